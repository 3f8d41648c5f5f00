using FluentAssertions;
using OmniBroker.Mqtt.Codec;
using Xunit;

namespace OmniBroker.Tests.Codec;

public class MqttTopicTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("/")]
    [InlineData("a/b/c")]
    [InlineData("/leading/and/trailing/")]
    [InlineData("a//b")]
    [InlineData("$SYS/broker/load")]
    [InlineData("sensors/température/€/😀")]
    [InlineData(" ")]
    public void IsValidTopicName_ProperNames_True(string topic)
    {
        MqttTopic.IsValidTopicName(topic).Should().BeTrue();
    }

    [Theory]
    [InlineData("")]          // [MQTT-4.7.3-1]
    [InlineData("a/#")]       // [MQTT-3.3.2-2]
    [InlineData("a/+/b")]
    [InlineData("+")]
    [InlineData("a#")]
    [InlineData("a\0b")]      // [MQTT-4.7.3-2]
    public void IsValidTopicName_ImproperNames_False(string topic)
    {
        MqttTopic.IsValidTopicName(topic).Should().BeFalse();
    }

    // Built in code: xunit would replace lone surrogates in attribute data while serializing it.
    public static IEnumerable<string> LoneSurrogates() =>
        ["a" + '\ud800' + "b", "a" + '\udc00', "a" + '\ud800', "x/" + '\udc00' + '\ud800'];

    [Fact]
    public void IsValid_LoneSurrogate_False()
    {
        foreach (string text in LoneSurrogates())
        {
            MqttTopic.IsValidTopicName(text).Should().BeFalse();
            MqttTopic.IsValidTopicFilter(text).Should().BeFalse();
        }
        MqttTopic.IsValidTopicName("a" + "\ud83d\ude00").Should().BeTrue("a surrogate pair is fine");
    }

    [Fact]
    public void IsValidTopicName_LongerThan65535Utf8Bytes_False()
    {
        MqttTopic.IsValidTopicName(new string('a', 65_535)).Should().BeTrue();
        MqttTopic.IsValidTopicName(new string('a', 65_536)).Should().BeFalse();
        MqttTopic.IsValidTopicName(new string('é', 32_767)).Should().BeTrue("32767 × 2 bytes = 65534");
        MqttTopic.IsValidTopicName(new string('é', 32_768)).Should().BeFalse("32768 × 2 bytes = 65536");
    }

    [Theory]
    [InlineData("#")]
    [InlineData("+")]
    [InlineData("a/#")]
    [InlineData("a/+/c")]
    [InlineData("+/+")]
    [InlineData("/+")]
    [InlineData("+/")]
    [InlineData("a/+/#")]
    [InlineData("sport/tennis/player1")]
    [InlineData("$SYS/#")]
    [InlineData("$share/group/a/b")]
    [InlineData("$share/group/#")]
    [InlineData("$share/g/+/x")]
    [InlineData("$share")]     // no "/" after it: an ordinary one-level filter
    [InlineData("$sharex/a/b")]
    [InlineData("a/$share/b")]
    public void IsValidTopicFilter_ProperFilters_True(string filter)
    {
        MqttTopic.IsValidTopicFilter(filter).Should().BeTrue();
    }

    [Theory]
    [InlineData("")]             // [MQTT-4.7.3-1]
    [InlineData("a/#/b")]        // '#' must be last [MQTT-4.7.1-2]
    [InlineData("#/a")]
    [InlineData("a#")]           // '#' alone in its level
    [InlineData("a/b#")]
    [InlineData("a+")]           // '+' alone in its level [MQTT-4.7.1-3]
    [InlineData("a/+b/c")]
    [InlineData("++")]
    [InlineData("a\0")]
    [InlineData("$share/")]      // no ShareName [MQTT-4.8.2-1]
    [InlineData("$share//a")]
    [InlineData("$share/group")] // no filter after the ShareName
    [InlineData("$share/group/")]
    [InlineData("$share/gr+oup/a")] // ShareName without '+' or '#' [MQTT-4.8.2-2]
    [InlineData("$share/gr#/a")]
    [InlineData("$share/+/a")]
    [InlineData("$share/g/a#")]  // the filter after the ShareName follows the usual rules
    public void IsValidTopicFilter_ImproperFilters_False(string filter)
    {
        MqttTopic.IsValidTopicFilter(filter).Should().BeFalse();
    }

    [Theory]
    [InlineData("$share/g/a", true)]
    [InlineData("$share", false)]
    [InlineData("$SHARE/g/a", false)]
    [InlineData("a/$share/g", false)]
    public void IsShared_RecognisesTheSharePrefix(string filter, bool expected)
    {
        MqttTopic.IsShared(filter).Should().Be(expected);
    }
}
