"""Kafka client security: settings checked together, one mapping per client library, no
password in a repr, an error or a JAAS string that could be broken out of."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from carbonpipe.core import kafka_security as ks
from carbonpipe.core.config import ConfigError, Settings, load_settings

PW = 'pa"ss\\w0rd;\nx=1 evil="y"'  # quote, backslash, semicolon, newline: all must survive


def _sasl_ssl(tmp_path: Path, **extra: object) -> Settings:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    return load_settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="host-a",
                         kafka_sasl_password=PW, kafka_ssl_cafile=ca, **extra)  # fmt: skip


def test_the_default_is_plaintext_with_nothing_else() -> None:
    s = load_settings()
    assert ks.python_kwargs(s) == {"security_protocol": "PLAINTEXT"}
    assert ks.spark_options(s) == {"kafka.bootstrap.servers": s.kafka_bootstrap_servers,
                                   "kafka.security.protocol": "PLAINTEXT"}  # fmt: skip
    assert ks.publish_topic(s, "gpu-01") == s.metrics_topic


def test_sasl_ssl_maps_to_kafka_python_and_spark(tmp_path: Path) -> None:
    s = _sasl_ssl(tmp_path)
    assert ks.python_kwargs(s) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "host-a", "sasl_plain_password": PW,
        "ssl_cafile": str(tmp_path / "ca.pem"),
    }  # fmt: skip
    opts = ks.spark_options(s)
    assert opts["kafka.security.protocol"] == "SASL_SSL"
    assert opts["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert opts["kafka.ssl.truststore.type"] == "PEM"
    assert opts["kafka.ssl.truststore.location"] == str(tmp_path / "ca.pem")
    assert opts["kafka.sasl.jaas.config"].startswith(
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="host-a" ')


def test_plain_mechanism_uses_the_plain_login_module(tmp_path: Path) -> None:
    s = _sasl_ssl(tmp_path, kafka_sasl_mechanism="PLAIN")
    assert "PlainLoginModule required" in ks.spark_options(s)["kafka.sasl.jaas.config"]


def test_client_certificate_goes_to_both_clients(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("CERT")
    key.write_text("KEY")
    s = _sasl_ssl(tmp_path, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key,
                  kafka_ssl_key_password="kp-secret")  # fmt: skip
    kw = ks.python_kwargs(s)
    assert (kw["ssl_certfile"], kw["ssl_keyfile"], kw["ssl_password"]) == (
        str(cert), str(key), "kp-secret")
    opts = ks.spark_options(s)
    assert opts["kafka.ssl.keystore.type"] == "PEM"
    assert opts["kafka.ssl.keystore.certificate.chain"] == "CERT"
    assert opts["kafka.ssl.keystore.key"] == "KEY"
    assert opts["kafka.ssl.key.password"] == "kp-secret"
    for shown in (repr(kw), str(opts), repr(s)):
        assert "kp-secret" not in shown and "KEY" not in shown.replace("keystore.key", "")


def test_no_password_in_repr_of_settings_or_options(tmp_path: Path) -> None:
    s = _sasl_ssl(tmp_path)
    for shown in (repr(s), str(s), repr(ks.python_kwargs(s)), repr(ks.spark_options(s)),
                  str(ks.java_properties(s)), str(s.model_dump())):  # fmt: skip
        assert "pa\"ss" not in shown and "w0rd" not in shown, shown
    assert "***" in repr(ks.spark_options(s))


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ({"kafka_security_protocol": "SASL_SSL"},
         ["CARBONPIPE_KAFKA_SASL_USERNAME", "CARBONPIPE_KAFKA_SASL_PASSWORD"]),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
         ["CARBONPIPE_KAFKA_SASL_PASSWORD"]),
        ({"kafka_sasl_username": "u", "kafka_sasl_password": "s3cr3t-pw"},
         ["CARBONPIPE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
         ["CARBONPIPE_KAFKA_SSL_CAFILE", "no such file"]),
        ({"kafka_ssl_cafile": "/etc/hostname"}, ["CARBONPIPE_KAFKA_SSL_CAFILE", "TLS"]),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/hostname"},
         ["CARBONPIPE_KAFKA_SSL_CERTFILE and CARBONPIPE_KAFKA_SSL_KEYFILE"]),
        ({"kafka_security_protocol": "TLS"}, ["CARBONPIPE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"]),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI",
          "kafka_sasl_username": "u", "kafka_sasl_password": "s3cr3t-pw"},
         ["CARBONPIPE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"]),
    ],
)  # fmt: skip
def test_settings_that_do_not_fit_name_the_key_and_never_the_password(
    given: dict[str, object], names: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(**given)
    for name in names:
        assert name in str(err.value)
    assert "s3cr3t-pw" not in str(err.value)


def test_jaas_quoting_escapes_what_would_end_the_string() -> None:
    assert ks.jaas_quote("plain") == '"plain"'
    assert ks.jaas_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert ks.jaas_quote("l1\nl2\r\t") == '"l1\\012l2\\015\\011"'
    cfg = ks.jaas_config("SCRAM-SHA-256", 'u"x', PW)
    assert cfg.count(";") == 1 + PW.count(";") and cfg.endswith('";')


def _kafka_clients_jar() -> Path | None:
    jars = load_settings().layout.jars / "kafka"
    return next(iter(sorted(jars.glob("kafka-clients-*.jar"))), None)


def test_kafka_parses_the_jaas_string_back_to_the_same_password(tmp_path: Path) -> None:
    """Kafka's own JAAS parser (``JaasContext.loadClientContext``, as a client uses it) reads the
    exact username and password back: nothing injected, nothing lost."""
    jar, java = _kafka_clients_jar(), shutil.which("java")
    if jar is None or java is None:
        pytest.skip("needs java and Kafka's jars (`make setup`)")
    src = tmp_path / "Parse.java"
    src.write_text(
        "import org.apache.kafka.common.config.types.Password;\n"
        "import org.apache.kafka.common.security.JaasContext;\n"
        "public class Parse { public static void main(String[] a) {\n"
        "  var e = JaasContext.loadClientContext(java.util.Map.of(\"sasl.jaas.config\",\n"
        "      new Password(a[0]))).configurationEntries();\n"
        "  var o = e.get(0).getOptions();\n"
        "  System.out.print(e.size() + \"|\" + o.size() + \"|\" + o.get(\"username\") + \"|\""
        " + o.get(\"password\"));\n"
        "}}\n"
    )
    cfg = ks.jaas_config("SCRAM-SHA-512", 'host"a', PW)
    out = subprocess.run([java, "-cp", f"{jar.parent}/*", str(src), cfg], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == f'1|2|host"a|{PW}'


def test_host_topics_name_the_host_and_reject_what_cannot_be_a_topic() -> None:
    s = load_settings(kafka_host_topics=True)
    assert ks.publish_topic(s, "gpu-01.lab") == "training.metrics.host.gpu-01.lab"
    assert ks.host_topic_pattern(s) == r"training\.metrics\.host\.[A-Za-z0-9._-]+"
    with pytest.raises(ValueError, match="CARBONPIPE_KAFKA_HOST_TOPICS"):
        ks.host_topic(s, "bad host/name")
    with pytest.raises(ValueError):
        ks.host_topic(s, "")
