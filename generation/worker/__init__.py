"""What happens to a job inside a worker process: run (the job's steps), engines (the loaded models
and the memory budget), request (params to the engine's request), store and finish (the images
written and finished), progress (steps, previews, heartbeat) and signals (start-up hooks).
Worker side: it imports the engine, and through it torch."""
