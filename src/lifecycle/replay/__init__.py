"""Replay: turning public event datasets into Segment calls for the demo and benchmarks."""
