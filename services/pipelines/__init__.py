"""Video pipelines: sources (RTSP, HTTP video/MJPEG, files under configured roots, frames pushed over gRPC)
processed by the fleet at a bounded rate, with results delivered to sinks; pipelines are recorded in Redis and
owned by one replica at a time through a lease, so another replica takes them over when one dies."""
