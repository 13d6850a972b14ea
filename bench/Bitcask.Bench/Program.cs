Console.WriteLine("bench: see bench/README.md (work in progress)");
