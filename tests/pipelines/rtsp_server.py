"""A real RTSP server on loopback (GStreamer's gst-rtsp-server) serving an MJPEG AVI as H.264 at its own rate, looped.

Run with the system Python (/usr/bin/python3, which has the GStreamer bindings):
``rtsp_server.py PORT FILE``; prints "ready" once listening. Mount: rtsp://127.0.0.1:PORT/cam (TCP and UDP).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( multifilesrc location="{path}" loop=true ! avidemux ! jpegdec ! videoconvert '
                       "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit("could not listen")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
