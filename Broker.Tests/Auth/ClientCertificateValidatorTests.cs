using FluentAssertions;
using OmniBroker.Auth;
using OmniBroker.Tests.Support;
using Xunit;

namespace OmniBroker.Tests.Auth;

public sealed class ClientCertificateValidatorTests : IClassFixture<ClientCertificateValidatorTests.Pki>
{
    private readonly TestPki _pki;

    public ClientCertificateValidatorTests(Pki fixture)
    {
        _pki = fixture.Value;
    }

    public sealed class Pki : IDisposable
    {
        public TestPki Value { get; } = TestPki.Create();

        public void Dispose() => Value.Dispose();
    }

    private ClientCertificateValidator Validator(TimeProvider? time = null, int capacity = 100, bool configureIntermediate = false) =>
        new(new TrustStore([_pki.Root], configureIntermediate ? [_pki.Intermediate] : []), time, capacity);

    [Fact]
    public void Validate_GoodLeafWithPresentedIntermediate_ValidChainLeafFirstAnchorLast()
    {
        var result = Validator().Validate(_pki.Good, [_pki.Intermediate]);

        result.IsValid.Should().BeTrue(result.Detail);
        result.Reason.Should().Be(CertificateFailureReason.None);
        result.Chain.Select(c => c.Thumbprint).Should().Equal(_pki.Good.Thumbprint, _pki.Intermediate.Thumbprint, _pki.Root.Thumbprint);
        result.ValidUntil.Should().Be(new DateTimeOffset(_pki.Good.NotAfter.ToUniversalTime()));
    }

    [Fact]
    public void Validate_IntermediateOnlyConfigured_Valid()
    {
        Validator(configureIntermediate: true).Validate(_pki.Good).IsValid.Should().BeTrue();
    }

    [Fact]
    public void Validate_IntermediateNeitherPresentedNorConfigured_Untrusted()
    {
        var result = Validator().Validate(_pki.Good);

        result.Reason.Should().Be(CertificateFailureReason.Untrusted);
        result.Chain.Should().BeEmpty();
    }

    [Fact]
    public void Validate_NoCertificate_NoCertificate()
    {
        Validator().Validate(null).Reason.Should().Be(CertificateFailureReason.NoCertificate);
    }

    [Fact]
    public void Validate_OtherCa_Untrusted()
    {
        var result = Validator().Validate(_pki.OtherCa, [_pki.OtherIntermediate]);

        result.Reason.Should().Be(CertificateFailureReason.Untrusted);
        result.Detail.Should().Contain("trust anchor");
    }

    [Fact]
    public void Validate_OtherRootPresentedByClient_StillUntrusted()
    {
        // A client cannot make its own root trusted by sending it.
        Validator().Validate(_pki.OtherCa, [_pki.OtherIntermediate, _pki.OtherRoot]).Reason.Should().Be(CertificateFailureReason.Untrusted);
    }

    [Fact]
    public void Validate_Expired_ExpiredWithDate()
    {
        var result = Validator().Validate(_pki.Expired, [_pki.Intermediate]);

        result.Reason.Should().Be(CertificateFailureReason.Expired);
        result.Detail.Should().Contain("expired at").And.Contain(_pki.Expired.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd"));
    }

    [Fact]
    public void Validate_NotYetValid_NotYetValid()
    {
        var result = Validator().Validate(_pki.NotYetValid, [_pki.Intermediate]);

        result.Reason.Should().Be(CertificateFailureReason.NotYetValid);
        result.Detail.Should().Contain("not valid before");
    }

    [Fact]
    public void Validate_NoClientAuthEku_BadKeyUsage()
    {
        var result = Validator().Validate(_pki.NoClientAuth, [_pki.Intermediate]);

        result.Reason.Should().Be(CertificateFailureReason.BadKeyUsage);
        result.Detail.Should().Contain("clientAuth");
    }

    [Fact]
    public void Validate_KeyUsageWithoutDigitalSignature_BadKeyUsage()
    {
        var result = Validator().Validate(_pki.NoDigitalSignature, [_pki.Intermediate]);

        result.Reason.Should().Be(CertificateFailureReason.BadKeyUsage);
        result.Detail.Should().Contain("digitalSignature");
    }

    [Fact]
    public void Validate_SameCertificateTwice_SecondAnswerFromCache()
    {
        var validator = Validator();

        var first = validator.Validate(_pki.Good, [_pki.Intermediate]);
        var second = validator.Validate(_pki.Good, [_pki.Intermediate, _pki.Good]);

        second.Should().BeSameAs(first);
        validator.CachedCount.Should().Be(1);
    }

    [Fact]
    public void Validate_DifferentPresentedIntermediates_CachedSeparately()
    {
        var validator = Validator();

        var withIntermediate = validator.Validate(_pki.Good, [_pki.Intermediate]);
        var without = validator.Validate(_pki.Good);

        withIntermediate.IsValid.Should().BeTrue();
        without.Reason.Should().Be(CertificateFailureReason.Untrusted);
        validator.CachedCount.Should().Be(2);
    }

    [Fact]
    public void Validate_CachedValidResultAfterLeafNotAfter_ReevaluatedAsExpired()
    {
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var validator = Validator(time);
        validator.Validate(_pki.Good, [_pki.Intermediate]).IsValid.Should().BeTrue();

        time.Advance(new DateTimeOffset(_pki.Good.NotAfter.ToUniversalTime()) - time.GetUtcNow() + TimeSpan.FromSeconds(1));

        validator.Validate(_pki.Good, [_pki.Intermediate]).Reason.Should().Be(CertificateFailureReason.Expired);
    }

    [Fact]
    public void Validate_CachedNotYetValidAfterNotBefore_ReevaluatedAsValid()
    {
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var validator = Validator(time);
        validator.Validate(_pki.NotYetValid, [_pki.Intermediate]).Reason.Should().Be(CertificateFailureReason.NotYetValid);

        time.Advance(new DateTimeOffset(_pki.NotYetValid.NotBefore.ToUniversalTime()) - time.GetUtcNow() + TimeSpan.FromSeconds(1));

        validator.Validate(_pki.NotYetValid, [_pki.Intermediate]).IsValid.Should().BeTrue();
    }

    [Fact]
    public void Validate_MoreCertificatesThanCapacity_CacheStaysBounded()
    {
        var validator = Validator(capacity: 2);

        foreach (var leaf in new[] { _pki.Good, _pki.Expired, _pki.NotYetValid, _pki.NoClientAuth })
        {
            validator.Validate(leaf, [_pki.Intermediate]);
        }

        validator.CachedCount.Should().BeLessThanOrEqualTo(2);
        validator.Validate(_pki.Good, [_pki.Intermediate]).IsValid.Should().BeTrue();
    }
}
