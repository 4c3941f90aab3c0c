"""Test and benchmark support: synthetic frames, a real RTSP server, clip encoding."""
