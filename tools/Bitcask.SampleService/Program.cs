// The sample service: see SampleApp and tools/Bitcask.SampleService/README.md.
// dotnet run --project tools/Bitcask.SampleService -- --urls http://127.0.0.1:5080 --Store:Path /tmp/sample-data
Bitcask.SampleService.SampleApp.Create(args).Run();
