"""The go-plugin side of a runbook plugin, for a process that is not Go.

A host (runbook, or anything using hashicorp/go-plugin with runbook's
handshake) starts the plugin with:

  RUNBOOK_PLUGIN_MAGIC_COOKIE   must equal the handshake's cookie value
  PLUGIN_PROTOCOL_VERSIONS      app protocol versions the host speaks ("1")
  PLUGIN_CLIENT_CERT            (AutoMTLS) the host's PEM certificate
  PLUGIN_MIN_PORT/MAX_PORT      the port range, when listening on TCP
  PLUGIN_UNIX_SOCKET_DIR/GROUP  where to put the socket, and its group

and reads one line from the plugin's stdout:

  CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK|ADDRESS|grpc|SERVER-CERT

where SERVER-CERT is the plugin's own certificate, DER, in base64 without
padding. It then speaks gRPC over mutual TLS: the host trusts only that
certificate and the plugin only the host's. Besides runbook.plugin.v1 the
plugin serves grpc.health.v1.Health (service "plugin" SERVING) and
plugin.GRPCController (Shutdown, called when the host closes the plugin).
"""

import base64
import datetime
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from goplugin import grpc_controller_pb2 as ctl_pb
from goplugin import grpc_controller_pb2_grpc as ctl_grpc
from runbook.plugin.v1 import plugin_pb2_grpc as pb_grpc

from . import hclog, tls
from .service import PROTOCOL_VERSION, PluginService

# go-plugin's own protocol version (the first field of the handshake line).
CORE_PROTOCOL_VERSION = 1

# runbook's handshake (sdk/plugin.Handshake). The cookie only tells a person
# who runs the plugin by hand that it is not a command; it is no secret.
MAGIC_COOKIE_KEY = "RUNBOOK_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "6c2a5b0d8f2e4c1a9d3b7e5f0a1c2d3e"

# go-plugin's name for the health-checked service.
HEALTH_SERVICE = "plugin"

# Not a go-plugin variable: lets a host (or a test) ask this plugin for TCP
# where go-plugin would pick a Unix socket.
NETWORK_ENV = "RUNBOOK_PLUGIN_NETWORK"


def serve(info, actions, argv=None):
    """Runs the plugin; the whole of a plugin's main. Does not return."""
    code = main(info, actions, sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything was stopped and cleaned up explicitly; an action thread
    # still sleeping must not hold the process (the host force-kills a
    # plugin that has not exited 2 seconds after Shutdown).
    os._exit(code)


def main(info, actions, argv, stdout=None, stderr=None):
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    log = hclog.Logger(info.name, stream=stderr, level=hclog.level_from_env())
    try:
        service = PluginService(info, actions, log)
    except ValueError as e:
        stderr.write("%s: %s\n" % (info.name, e))
        return 1

    if argv:
        if argv[0] == "describe":
            json.dump(service.description(), stdout, indent=2)
            stdout.write("\n")
            stdout.flush()
            return 0
        if argv[0] in ("version", "--version"):
            stdout.write("%s %s (protocol %d)\n" % (info.name, info.version, PROTOCOL_VERSION))
            return 0
        stderr.write("%s: unknown argument %r (a runbook plugin takes `describe`, `version`, "
                     "or is started by runbook)\n" % (info.name, argv[0]))
        return 2

    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        stderr.write("This binary is a runbook plugin. It is not meant to be executed directly:\n"
                     "runbook starts it. Try `runbook-plugin-%s describe` to see what it offers.\n"
                     % info.name)
        return 1

    versions = [v.strip() for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v.strip()]
    if versions and str(PROTOCOL_VERSION) not in versions:
        # Still answer with ours: the host then reports the mismatch.
        log.warn("host does not speak this plugin's protocol version",
                 host_versions=",".join(versions), plugin_version=PROTOCOL_VERSION)

    return Server(service, log).run(stdout)


class Server:
    def __init__(self, service, log):
        self.service = service
        self.log = log
        self.stopping = threading.Event()
        self.why = ""
        self.grace = 0.0
        self._cleanup = []

    def stop(self, why, grace=0.0):
        """Ends serving; grace is how long in-flight calls may still finish."""
        if not self.stopping.is_set():
            self.why = why
            self.grace = grace
            self.stopping.set()

    def run(self, stdout):
        try:
            return self._run(stdout)
        finally:
            self._run_cleanup()

    def _run(self, stdout):
        self._install_signals()
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc"),
            # grpcio sets SO_REUSEPORT by default, which would let two
            # plugins share one TCP port from PLUGIN_MIN_PORT..MAX_PORT.
            options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_PluginServicer_to_server(self.service, server)
        health_servicer = health.HealthServicer()
        health_servicer.set(HEALTH_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        ctl_grpc.add_GRPCControllerServicer_to_server(_Controller(self), server)
        self._cleanup.append(lambda: server.stop(grace=None))

        client_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
        try:
            listener, network, address = self._listen()
            self._cleanup.append(listener.close)
            if client_pem:
                # gRPC listens on a private socket; the TLS front owns the
                # address the host dials and relays decrypted bytes to it.
                private = tempfile.mkdtemp(prefix="plugin-grpc-",
                                           dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
                self._cleanup.append(lambda: _rmtree(private))
                backend = os.path.join(private, "grpc.sock")
                if not server.add_secure_port("unix:" + backend, grpc.local_server_credentials(
                        grpc.LocalConnectionType.UDS)):
                    raise OSError("cannot listen on the private socket %s" % backend)
                ctx, server_cert_b64 = mtls_context(client_pem.encode(), private)
                front = tls.Front(listener, ctx, backend, self.log)
                self._cleanup.append(front.stop)
            else:
                # go-plugin serves in the clear when the host did not turn on
                # AutoMTLS; runbook always does.
                self.log.warn("the host sent no client certificate: serving without TLS")
                server_cert_b64 = ""
                front = None
                target = ("unix:" + address) if network == "unix" else address
                listener.close()  # grpcio binds the address itself
                if network == "unix":
                    os.unlink(address)
                if not server.add_insecure_port(target):
                    raise OSError("cannot listen on %s" % address)
        except (OSError, ValueError) as e:
            self.log.error("cannot listen", error=str(e))
            return 1
        server.start()
        if front:
            front.start()

        line = "%d|%d|%s|%s|grpc|%s" % (CORE_PROTOCOL_VERSION, PROTOCOL_VERSION, network, address,
                                        server_cert_b64)
        if os.environ.get("PLUGIN_MULTIPLEX_GRPC"):
            # A host that asks for gRPC broker multiplexing reads a seventh
            # field; this plugin has no broker, so it says so plainly.
            line += "|false"
        stdout.write(line + "\n")
        stdout.flush()
        # From here on stdout belongs to the host's handshake reader: route
        # stray prints (ours or a library's) to stderr, where they are logs.
        _stdout_to_stderr(stdout)

        self._watch_parent()
        self.log.debug("plugin serving", network=network, address=address)

        self.stopping.wait()
        self.log.debug("plugin stopping", reason=self.why)
        # After Shutdown the host wants nothing more (go-plugin's Go servers
        # stop at once too); on SIGTERM, in-flight calls get a moment.
        server.stop(grace=self.grace or None).wait(5)
        if front:
            front.stop()
        return 0

    def _listen(self):
        """Binds the address the host will dial: (socket, network, address)."""
        network = os.environ.get(NETWORK_ENV, "tcp" if os.name == "nt" else "unix")
        if network == "unix":
            base = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None
            d = tempfile.mkdtemp(prefix="plugin", dir=base)
            self._cleanup.append(lambda: _rmtree(d))
            path = os.path.join(d, "plugin.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            group = os.environ.get("PLUGIN_UNIX_SOCKET_GROUP")
            if group:
                _share_with_group(d, path, group)
            return sock, "unix", path
        if network != "tcp":
            raise ValueError("%s=%r: want unix or tcp" % (NETWORK_ENV, network))
        lo = int(os.environ.get("PLUGIN_MIN_PORT") or 0)
        hi = int(os.environ.get("PLUGIN_MAX_PORT") or 0)
        if lo > hi:
            raise ValueError("PLUGIN_MIN_PORT %d is greater than PLUGIN_MAX_PORT %d" % (lo, hi))
        for port in range(lo, hi + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            return sock, "tcp", "127.0.0.1:%d" % sock.getsockname()[1]
        raise OSError("no free TCP port on 127.0.0.1 in %d..%d" % (lo, hi))

    def _install_signals(self):
        # Like go-plugin's Go servers: an interrupt typed at the terminal
        # reaches the whole process group, and it is the host's to handle;
        # it stops its plugins itself.
        try:
            signal.signal(signal.SIGINT, lambda *_: self.log.debug("ignoring an interrupt; the host stops this plugin"))
            signal.signal(signal.SIGTERM, lambda *_: self.stop("terminated", grace=1.0))
        except ValueError:
            pass  # not the main thread (embedded use)

    def _watch_parent(self):
        # A host killed outright cannot call Shutdown; a plugin whose parent
        # is gone has nobody to serve.
        parent = os.getppid()

        def watch():
            while not self.stopping.wait(1.0):
                if os.getppid() != parent:
                    self.stop("the host process exited")
                    return

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()

    def _run_cleanup(self):
        while self._cleanup:
            fn = self._cleanup.pop()
            try:
                fn()
            except OSError:
                pass


class _Controller(ctl_grpc.GRPCControllerServicer):
    def __init__(self, server):
        self.server = server

    def Shutdown(self, request, context):
        self.server.log.debug("shutdown requested by the host")
        self.server.stop("shutdown requested by the host")
        return ctl_pb.Empty()


def self_signed_cert():
    """A fresh key and self-signed certificate for "localhost", as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        # The certificate lives as long as this process; a year is ample.
        .not_valid_after(now + datetime.timedelta(days=365))
        # The host verifies the server name "localhost", and uses this
        # certificate as its only root: it must be a CA for itself.
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, key_encipherment=False,
            content_commitment=False, data_encipherment=False, key_agreement=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert, cert.public_bytes(serialization.Encoding.PEM), key_pem


def mtls_context(client_pem, private_dir):
    """The TLS server side of go-plugin's AutoMTLS, and our certificate.

    Returns an SSLContext that presents a fresh self-signed certificate and
    accepts only a client presenting the host's own self-signed certificate
    (PLUGIN_CLIENT_CERT), and that certificate as the handshake line
    carries it: DER in base64 without padding (Go's RawStdEncoding).
    """
    x509.load_pem_x509_certificate(client_pem)  # a bad certificate fails here, plainly
    cert, cert_pem, key_pem = self_signed_cert()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=client_pem.decode())
    # gRPC clients insist on HTTP/2 by ALPN.
    ctx.set_alpn_protocols(["h2"])
    # SSLContext loads keys only from files: write them into our private
    # (0700) directory and remove them at once.
    fd, path = tempfile.mkstemp(dir=private_dir, suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem + key_pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    der = cert.public_bytes(serialization.Encoding.DER)
    return ctx, base64.b64encode(der).decode().rstrip("=")


def _stdout_to_stderr(stdout):
    if stdout is not sys.stdout:
        return  # embedded or tested with a buffer: leave the process alone
    try:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.stdout = sys.stderr


def _share_with_group(d, path, group):
    import grp  # POSIX only, like the variable

    gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    os.chown(d, -1, gid)
    os.chmod(d, 0o770)
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)


def _rmtree(d):
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
