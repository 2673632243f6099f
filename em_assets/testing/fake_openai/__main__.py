"""Run the fake server in the foreground: ``python -m em_assets.testing.fake_openai``.

It prints its base URL on the first line, so a benchmark can start it as a separate process and
read the counters back from ``GET /_fake/stats``.
"""

from __future__ import annotations

import argparse
import threading

from em_assets.testing.fake_openai.server import FakeOpenAIServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m em_assets.testing.fake_openai",
        description="A local, deterministic stand-in for the OpenAI HTTP API.",
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--hang", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        port=args.port,
        latency_s=args.latency,
        latency_jitter_s=args.jitter,
        rate_limit_rps=args.rate_limit,
        fault_rate=args.fault_rate,
        hang_s=args.hang,
        seed=args.seed,
    )
    with server:
        print(server.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
