#!/usr/bin/env python3
"""Serve moto, patched for runbook's DR simulation, on 127.0.0.1.

  serve.py [--host 127.0.0.1] [--port 4566] [--timing FILE] [--ready-file PATH]
           [--exit-on-stdin-eof]

--port 0 binds a free port; the bound port is written to --ready-file (JSON
{"port": n, "pid": n}, written atomically once the socket listens) and printed on
stdout as "runbook-sim listening on http://HOST:PORT".
--exit-on-stdin-eof makes the server exit when its stdin closes, so that it cannot
outlive a parent that died without cleaning up.
"""

import argparse
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("RUNBOOK_SIM_PORT", 4566)))
    p.add_argument("--timing", help="JSON file with seconds per transition, or a preset")
    p.add_argument("--ready-file")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    args = p.parse_args(argv)

    # moto builds some URLs from MOTO_PORT; set before moto is imported.
    if args.port:
        os.environ.setdefault("MOTO_PORT", str(args.port))

    import runbook_sim
    from runbook_sim.timing import PRESETS, TIMING

    TIMING.load_from_env()
    if args.timing:
        if args.timing in PRESETS:
            TIMING.set_initial({"preset": args.timing})
        else:
            TIMING.load_from_env(args.timing)

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    handler = MotoRequestHandler
    if args.quiet:

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *a, **k):
                pass

        handler = QuietHandler

    server = make_server(args.host, args.port, runbook_sim.app(), threaded=True, request_handler=handler)
    port = server.server_address[1]
    os.environ["MOTO_PORT"] = str(port)

    def stop(*_):
        # shutdown() blocks until serve_forever returns: call it off the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:

        def watch():
            fd = sys.stdin.fileno()
            while os.read(fd, 4096):
                pass
            stop()

        threading.Thread(target=watch, daemon=True).start()

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"port": port, "pid": os.getpid()}, f)
        os.replace(tmp, args.ready_file)
    print(f"runbook-sim listening on http://{args.host}:{port}", flush=True)
    server.serve_forever()
    server.server_close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: daemon threads (request handlers, the stdin
    # watcher) may hold locks it would wait for.
    os._exit(0)


if __name__ == "__main__":
    main()
