"""Where the CLI connects: flags, else the environment, else the state ``fleet up`` saved."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from fleet.client import channel_credentials, state_address
from fleet.paths import client_state_file

DEFAULT_ADDRESS = "127.0.0.1:50051"


def state_path(args: argparse.Namespace) -> Path:
    """``--state-file``, else FLEET_STATE_FILE, else the file ``fleet up`` always writes."""
    chosen = getattr(args, "state_file", None) or os.environ.get("FLEET_STATE_FILE")
    return Path(chosen) if chosen else client_state_file()


@dataclass(frozen=True)
class Target:
    address: str
    ca: str | None  # the CA to trust (None: plaintext)

    def channel(self) -> grpc.Channel:
        credentials = channel_credentials(self.ca) if self.ca else None
        return grpc.secure_channel(self.address, credentials) if credentials else grpc.insecure_channel(self.address)


def target(args: argparse.Namespace, saved: dict) -> Target:
    address = args.address or os.environ.get("FLEET_ADDRESS") or state_address(saved) or DEFAULT_ADDRESS
    # The saved CA belongs to the saved fleet: used only when talking to that fleet's gateway.
    ca = args.ca or os.environ.get("FLEET_CA") or (saved.get("ca") if address == state_address(saved) else None)
    return Target(address, ca or None)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="gateway host:port (default: FLEET_ADDRESS, or the one `fleet up` saved)")
    p.add_argument("--ca", help="CA certificate (PEM) to trust: connect over TLS (default: FLEET_CA, or the CA of "
                                "the fleet `fleet up --tls` saved)")
    p.add_argument("--state-file", help="state file `fleet up --state-file` wrote (default: FLEET_STATE_FILE, or "
                                        "the one `fleet up` always writes)")
