"""The engine: machine definitions from states/, persisted machines, and the run loop."""
