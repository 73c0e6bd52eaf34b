"""The storefront service: charges orders through the mesh with httpx.

    python storefront.py BUNDLE [--orders N]

Every call goes through the bundle's policies for storefront -> payments: an instance is
picked, a 503 or a dead instance is retried on another, and an instance that keeps failing is
ejected. Exits 0 when every order was charged.
"""

from __future__ import annotations

import argparse
import sys

from meshspec_runtime import EndpointsEjected, Mesh


def charge_orders(bundle: str, orders: int) -> int:
    """Charge ``orders`` orders; print what happened; return how many succeeded."""
    ejected: list[str] = []
    charged = 0
    with Mesh.open(bundle, service="storefront") as mesh:
        mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))
        with mesh.httpx_client("payments") as client:
            for order in range(orders):
                response = client.post("/charge", json={"order": order, "cents": 1250})
                charged += response.status_code == 200
    print(f"{charged} of {orders} orders charged")
    for endpoint in ejected:
        print(f"ejected by outlier detection: {endpoint}")
    return charged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--orders", type=int, default=20)
    args = parser.parse_args()
    sys.exit(0 if charge_orders(args.bundle, args.orders) == args.orders else 1)


if __name__ == "__main__":
    main()
