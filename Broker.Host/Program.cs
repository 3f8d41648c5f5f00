using OmniBroker.Host.Cli;

return await CliCommands.InvokeAsync(args);
