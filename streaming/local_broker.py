"""A real single-node Apache Kafka (KRaft: broker + controller in one JVM) on 127.0.0.1, without Docker.

The jars come from Maven Central through ``streaming/kafka/pom.xml`` and are cached in
``<home>/lib`` (and Maven's own ``~/.m2``); they are re-resolved only when the pom changes.
``up`` is idempotent: a broker already answering on the port is left alone.

Layout of the home directory (``$HUB_KAFKA_HOME``, default ``.kafka`` in the project root)::

    lib/                    jars (broker, tools, log4j2)
    lib.stamp               hash of the pom the jars came from
    server.properties       generated broker config
    log4j2.properties       generated logging config
    data/                   KRaft metadata and topic logs
    logs/server.log         the broker's log
    kafka.pid               pid of the running broker
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

POM = Path(__file__).parent / "kafka" / "pom.xml"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class LocalBrokerError(RuntimeError):
    """The local broker could not be resolved, formatted, started or stopped."""


@dataclass(frozen=True)
class LocalBroker:
    """Where the broker lives and which ports it takes."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"

    @classmethod
    def from_env(cls, port: int | None = None) -> LocalBroker:
        """Home from $HUB_KAFKA_HOME (default .kafka); ports: $HUB_KAFKA_PORT (9092) for clients, the
        next one for the controller, the one after for SASL/SCRAM clients."""
        home = Path(os.environ.get("HUB_KAFKA_HOME", PROJECT_ROOT / ".kafka")).resolve()
        port = port or int(os.environ.get("HUB_KAFKA_PORT", "9092"))
        controller = int(os.environ.get("HUB_KAFKA_CONTROLLER_PORT", str(port + 1)))
        return cls(home=home, port=port, controller_port=controller)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_port(self) -> int:
        """A second listener, SASL_PLAINTEXT with SCRAM-SHA-256/512, for authenticated clients."""
        return self.controller_port + 1

    @property
    def sasl_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def tls_port(self) -> int:
        """A third listener, SASL_SSL (SCRAM over TLS), with a certificate from a local CA."""
        return self.controller_port + 2

    @property
    def tls_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        """PEM of the local CA that signed the broker's certificate (clients trust it)."""
        return self.home / "tls" / "ca.pem"

    def _ensure_tls(self) -> str:
        """Create (once) a local CA and a broker keystore for 127.0.0.1 with the JDK's keytool."""
        tls = self.home / "tls"
        password_file = tls / "store-password"
        if (tls / "broker.p12").exists() and password_file.exists() and self.ca_file.exists():
            return password_file.read_text().strip()
        shutil.rmtree(tls, ignore_errors=True)
        tls.mkdir(parents=True)
        password = base64.urlsafe_b64encode(os.urandom(18)).decode()
        password_file.write_text(password)
        password_file.chmod(0o600)
        java = Path(self.java())
        keytool = str(java.with_name("keytool"))
        san = "SAN=ip:127.0.0.1,dns:localhost"
        steps = [
            ["-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=pilgrim-hub-local-ca",
             "-ext", "bc:c", "-validity", "3650", "-keystore", "ca.p12", "-storetype", "PKCS12"],
            ["-exportcert", "-rfc", "-alias", "ca", "-keystore", "ca.p12", "-file", "ca.pem"],
            ["-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=localhost",
             "-ext", san, "-validity", "3650", "-keystore", "broker.p12", "-storetype", "PKCS12"],
            ["-certreq", "-alias", "broker", "-keystore", "broker.p12", "-file", "broker.csr"],
            ["-gencert", "-alias", "ca", "-keystore", "ca.p12", "-infile", "broker.csr", "-outfile", "broker.pem",
             "-rfc", "-ext", san, "-validity", "3650"],
            ["-importcert", "-alias", "ca", "-file", "ca.pem", "-keystore", "broker.p12", "-noprompt"],
            ["-importcert", "-alias", "broker", "-file", "broker.pem", "-keystore", "broker.p12", "-noprompt"],
        ]
        for step in steps:
            result = subprocess.run(  # noqa: S603
                [keytool, *step, "-storepass", password, "-keypass", password],
                cwd=tls, capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise LocalBrokerError(f"keytool {step[0]} failed: {result.stdout}{result.stderr}")
        return password

    @property
    def lib(self) -> Path:
        return self.home / "lib"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    # ---- jars ---------------------------------------------------------------------------------

    def resolve_jars(self) -> None:
        """Copy Kafka's jars from Maven Central into ``lib/`` unless the cached set matches the pom."""
        stamp = self.home / "lib.stamp"
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == digest and any(self.lib.glob("kafka_*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalBrokerError("Maven (mvn) is needed to fetch the Kafka jars; install it and retry")
        if self.lib.exists():
            shutil.rmtree(self.lib)
        self.lib.mkdir(parents=True)
        print(f"resolving Apache Kafka jars from Maven Central into {self.lib} ...", file=sys.stderr)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.lib}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise LocalBrokerError(f"mvn failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
        stamp.write_text(digest)

    def java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        found = shutil.which("java")
        if found is None:
            raise LocalBrokerError("Java 17+ is needed to run Kafka; install a JDK and retry")
        return found

    def java_command(self, main_class: str, *args: str, heap: str = "256m", log_name: str = "tools.log") -> list[str]:
        """Command line that runs one of Kafka's main classes (broker or tool) from the cached jars."""
        return [
            self.java(),
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dhub.log.file={self.home / 'logs' / log_name}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{self.lib}/*",
            main_class,
            *args,
        ]

    # ---- config -------------------------------------------------------------------------------

    def _write_config(self) -> Path:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        store_password = self._ensure_tls()
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "# generated by `hub kafka up`; edits are overwritten",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},SASL_SSL://127.0.0.1:{self.tls_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},SASL_SSL://127.0.0.1:{self.tls_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
                    "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
                    f"ssl.keystore.location={self.home / 'tls' / 'broker.p12'}",
                    "ssl.keystore.type=PKCS12",
                    f"ssl.keystore.password={store_password}",
                    f"ssl.key.password={store_password}",
                    "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
                    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=3",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        props.chmod(0o600)  # holds the local keystore's password
        (self.home / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = File",
                    "appender.file.name = file",
                    "appender.file.fileName = ${sys:hub.log.file}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = info",
                    "rootLogger.appenderRef.file.ref = file",
                    "logger.zk.name = org.apache.kafka.raft",
                    "logger.zk.level = warn",
                    "",
                ]
            )
        )
        return props

    def _format_storage(self, props: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = self.java_command("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise LocalBrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    # ---- lifecycle ----------------------------------------------------------------------------

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def port_open(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def status(self) -> str:
        pid = self._pid()
        if pid and self.port_open():
            return f"running (pid {pid}) on {self.bootstrap_servers}"
        if pid:
            return f"starting or unhealthy (pid {pid}); see {self.log_file}"
        if self.port_open():
            return f"something else answers on {self.bootstrap_servers}"
        return "stopped"

    def up(self, timeout_s: float = 90.0) -> str:
        """Start the broker unless it is already running; return its bootstrap servers."""
        if self._pid() and self.port_open():
            return self.bootstrap_servers
        if self.port_open():
            if self._answers_metadata():
                logger.warning("a Kafka broker not started from %s answers on %s; using it", self.home, self.port)
                return self.bootstrap_servers
            raise LocalBrokerError(f"port {self.port} is taken by another process; set HUB_KAFKA_PORT or stop it")
        self.resolve_jars()
        props = self._write_config()
        self._format_storage(props)
        with open(self.home / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(  # noqa: S603
                self.java_command("kafka.Kafka", str(props), heap=self.heap, log_name="server.log"),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalBrokerError(
                    f"broker exited with {proc.returncode}; see {self.log_file} and {self.home / 'logs/stdout.log'}"
                )
            if self.port_open() and self._answers_metadata():
                return self.bootstrap_servers
            time.sleep(0.3)
        self.down()
        raise LocalBrokerError(f"broker did not answer within {timeout_s:.0f}s; see {self.log_file}")

    def _answers_metadata(self) -> bool:
        from streaming.kafka import ClientSettings, KafkaUnavailable, ping

        try:
            ping(ClientSettings(bootstrap_servers=self.bootstrap_servers), timeout_s=5)
        except KafkaUnavailable:
            return False
        return True

    def down(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``). Returns False if it was not running."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._pid() is not None:
            time.sleep(0.2)
        if self._pid() is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        self.pid_file.unlink(missing_ok=True)
        return True

    def reset(self) -> None:
        """Stop the broker and delete its data (topics, offsets); jars stay cached."""
        self.down()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.home / "logs", ignore_errors=True)

    def run_tool(self, main_class: str, *args: str) -> int:
        """Run one of Kafka's own command-line tools (console consumer, perf tools) in the foreground."""
        self.resolve_jars()
        if not (self.home / "log4j2.properties").exists():
            self._write_config()
        return subprocess.call(self.java_command(main_class, *args))  # noqa: S603
