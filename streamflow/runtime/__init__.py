"""Runtime integration: runs an app's topology on faust-streaming, a batch at a time."""
