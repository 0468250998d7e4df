"""Kafka client security and host topics, declared once and mapped to each client library.

The ``CARBONPIPE_KAFKA_*`` settings say how every client authenticates and encrypts; this
module turns them into kafka-python keyword arguments (collector, feeder, CLI, health probe,
admin) and into the Java client's properties, which Spark takes ``kafka.``-prefixed (the
job's source and dead-letter sink, the bench). One mapping, so no client can be left on
PLAINTEXT by accident. Pure: nothing here opens a connection; only ``java_properties`` reads
the client certificate files, because Spark's PEM keystore takes their text.

Secrets stay secret: the mappings return ``Redacted`` dicts, whose ``repr``/``str`` mask every
value that carries a password or key, so a logged option dict shows ``***``.

Host topics (``CARBONPIPE_KAFKA_HOST_TOPICS=true``): a Kafka record does not carry the
principal that produced it, so identity travels in the topic name instead. Each collector
writes ``<metrics_topic>.host.<host>``, an ACL lets only that host's principal write there,
and the job checks that every event's ``host`` is the one its topic names (README "Security").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr


class Settings(Protocol):
    """What this module reads of ``carbonpipe.core.config.Settings`` (a protocol: the settings
    module validates through this one, so importing it back would be a cycle)."""

    @property
    def kafka_bootstrap_servers(self) -> str: ...
    @property
    def metrics_topic(self) -> str: ...
    @property
    def kafka_security_protocol(self) -> str: ...
    @property
    def kafka_sasl_mechanism(self) -> str: ...
    @property
    def kafka_sasl_username(self) -> str | None: ...
    @property
    def kafka_sasl_password(self) -> SecretStr | None: ...
    @property
    def kafka_ssl_cafile(self) -> Path | None: ...
    @property
    def kafka_ssl_certfile(self) -> Path | None: ...
    @property
    def kafka_ssl_keyfile(self) -> Path | None: ...
    @property
    def kafka_ssl_key_password(self) -> SecretStr | None: ...
    @property
    def kafka_host_topics(self) -> bool: ...

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
# Option names whose values are secret (matched on the name's last part).
_SECRET_NAMES = ("password", "jaas.config", "keystore.key", "ssl_password")
HOST_TOPIC_INFIX = ".host."
_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]+")
MAX_TOPIC_LEN = 249  # Kafka's limit on a topic name


class Redacted(dict[str, Any]):
    """A plain dict (``**``-unpackable, passed to clients as is) that never prints a secret."""

    def __repr__(self) -> str:
        shown = {k: ("***" if _is_secret(k) and v is not None else v) for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


def _is_secret(name: str) -> bool:
    return any(name.endswith(s) for s in _SECRET_NAMES)


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def uses_ssl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def check_settings(settings: Settings) -> None:
    """Raise ``ValueError`` naming the key and the fix when the settings do not fit together.

    Credentials the protocol would ignore are errors: a password set with PLAINTEXT would
    otherwise be dropped without a word and the client would connect unauthenticated.
    """
    proto = settings.kafka_security_protocol
    p = "CARBONPIPE_KAFKA_"
    if uses_sasl(settings):
        missing = [f"{p}SASL_{k}" for k, v in (("USERNAME", settings.kafka_sasl_username),
                                              ("PASSWORD", settings.kafka_sasl_password)) if not v]
        if missing:
            raise ValueError(f"{p}SECURITY_PROTOCOL={proto} needs {' and '.join(missing)}: "
                             "the principal this client authenticates as")
    elif settings.kafka_sasl_username or settings.kafka_sasl_password:
        raise ValueError(f"{p}SASL_USERNAME/{p}SASL_PASSWORD are set but {p}SECURITY_PROTOCOL="
                         f"{proto} does not use them: set it to SASL_SSL (or SASL_PLAINTEXT on a "
                         "trusted network), or unset them")
    files = {"SSL_CAFILE": settings.kafka_ssl_cafile, "SSL_CERTFILE": settings.kafka_ssl_certfile,
             "SSL_KEYFILE": settings.kafka_ssl_keyfile}
    given = [k for k, v in files.items() if v is not None]
    if given and not uses_ssl(settings):
        raise ValueError(f"{', '.join(p + k for k in given)} set but {p}SECURITY_PROTOCOL={proto} "
                         "does not use TLS: set it to SSL or SASL_SSL, or unset them")
    if settings.kafka_ssl_key_password and settings.kafka_ssl_keyfile is None:
        raise ValueError(f"{p}SSL_KEY_PASSWORD is set without {p}SSL_KEYFILE")
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise ValueError(f"{p}SSL_CERTFILE and {p}SSL_KEYFILE go together (a client "
                         "certificate and its private key): set both or neither")
    for key, path in files.items():
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{p}{key}={path}: no such file; give the path of a PEM file")


def python_kwargs(settings: Settings) -> Redacted:
    """kafka-python keyword arguments (``KafkaProducer``/``KafkaConsumer``/``KafkaAdminClient``)."""
    kw = Redacted(security_protocol=settings.kafka_security_protocol)
    if uses_sasl(settings):
        assert settings.kafka_sasl_password is not None  # check_settings
        kw.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                  sasl_plain_username=settings.kafka_sasl_username,
                  sasl_plain_password=settings.kafka_sasl_password.get_secret_value())
    if uses_ssl(settings):
        if settings.kafka_ssl_cafile is not None:
            kw["ssl_cafile"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile is not None:
            kw["ssl_certfile"] = str(settings.kafka_ssl_certfile)
            kw["ssl_keyfile"] = str(settings.kafka_ssl_keyfile)
        if settings.kafka_ssl_key_password is not None:
            kw["ssl_password"] = settings.kafka_ssl_key_password.get_secret_value()
    return kw


def jaas_quote(text: str) -> str:
    """``text`` as a JAAS quoted string: ``"`` and ``\\`` escaped, control characters as octal
    escapes (Java's ``StreamTokenizer``, which Kafka's JAAS parser uses, ends a quoted string
    at a raw newline). Any password survives, and none can close the quote and add options."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def jaas_config(mechanism: str, username: str, password: str) -> str:
    """The ``sasl.jaas.config`` value of a Java client for ``mechanism`` (PLAIN or SCRAM)."""
    return (f"{_LOGIN_MODULES[mechanism]} required username={jaas_quote(username)} "
            f"password={jaas_quote(password)};")


def java_properties(settings: Settings) -> Redacted:
    """The Java client's properties (what Spark takes with a ``kafka.`` prefix)."""
    props = Redacted({"security.protocol": settings.kafka_security_protocol})
    if uses_sasl(settings):
        assert settings.kafka_sasl_username and settings.kafka_sasl_password  # check_settings
        props["sasl.mechanism"] = settings.kafka_sasl_mechanism
        props["sasl.jaas.config"] = jaas_config(settings.kafka_sasl_mechanism,
                                                settings.kafka_sasl_username,
                                                settings.kafka_sasl_password.get_secret_value())
    if uses_ssl(settings):
        if settings.kafka_ssl_cafile is not None:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile is not None and settings.kafka_ssl_keyfile is not None:
            # A PEM keystore by location wants key and chain in one file; given as two, the
            # text goes in the properties (Kafka treats both as passwords: not logged).
            props["ssl.keystore.type"] = "PEM"
            props["ssl.keystore.certificate.chain"] = Path(settings.kafka_ssl_certfile).read_text()
            props["ssl.keystore.key"] = Path(settings.kafka_ssl_keyfile).read_text()
            if settings.kafka_ssl_key_password is not None:
                props["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    return props


def spark_options(settings: Settings) -> Redacted:
    """Options of Spark's Kafka source and sink: the bootstrap servers and the security."""
    opts = Redacted({"kafka.bootstrap.servers": settings.kafka_bootstrap_servers})
    opts.update({f"kafka.{k}": v for k, v in java_properties(settings).items()})
    return opts


# ------------------------------------------------------------------------ host topics
def host_topic_prefix(settings: Settings) -> str:
    return settings.metrics_topic + HOST_TOPIC_INFIX


def host_topic(settings: Settings, host: str) -> str:
    """The topic only ``host``'s principal may write (``<metrics_topic>.host.<host>``)."""
    name = host_topic_prefix(settings) + host
    if not host or not _TOPIC_CHARS.fullmatch(host) or len(name) > MAX_TOPIC_LEN:
        raise ValueError(f"host {host!r} cannot name a Kafka topic ({name!r}): with "
                         "CARBONPIPE_KAFKA_HOST_TOPICS=true a host name may use letters, digits, "
                         f". _ and - only, and the topic at most {MAX_TOPIC_LEN} characters")
    return name


def host_topic_pattern(settings: Settings) -> str:
    """Java regex matching every host topic, and nothing else (the dead-letter topic not)."""
    # Python's escapes of topic characters (``\.``, ``\-``) mean the same in Java.
    return re.escape(host_topic_prefix(settings)) + "[A-Za-z0-9._-]+"


def publish_topic(settings: Settings, host: str) -> str:
    """Where a collector on ``host`` writes: its host topic, or the shared metrics topic."""
    return host_topic(settings, host) if settings.kafka_host_topics else settings.metrics_topic
