"""Risk: the engine, its tables and checks, the verdict, and the timebase."""
