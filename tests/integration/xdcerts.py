"""Test certificates made at test time with the openssl command (Debian's).

make_ca() makes a self-signed CA; make_cert() a certificate for 127.0.0.1 and
localhost signed by it (EC P-256, valid two days). Files go into the folder
given; the functions return their paths. Nothing here is kept or reused.
"""
import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder, name="crossdock test CA"):
    """Returns (ca_cert, ca_key)."""
    cert, key = os.path.join(folder, f"{name.replace(' ', '_')}.pem"), \
        os.path.join(folder, f"{name.replace(' ', '_')}.key")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return cert, key


def make_cert(folder, ca, name="server", cn="127.0.0.1"):
    """A server certificate for 127.0.0.1/localhost signed by ca; returns (cert, key)."""
    cert, key = os.path.join(folder, name + ".pem"), os.path.join(folder, name + ".key")
    csr, ext = os.path.join(folder, name + ".csr"), os.path.join(folder, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", csr, "-subj", f"/CN={cn}", cwd=folder)
    _run("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext, cwd=folder)
    os.chmod(key, 0o600)
    return cert, key
