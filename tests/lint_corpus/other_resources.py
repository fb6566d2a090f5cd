"""Files and processes: other linters' ground (pylint R1732, ruff SIM115); pooldoctor stays silent."""
import subprocess
import tempfile


def read_config(path):
    f = open(path)
    data = f.read()
    f.close()
    return data


def spawn(cmd):
    proc = subprocess.Popen(cmd)
    return proc.wait()


def scratch():
    tmp = tempfile.NamedTemporaryFile()
    tmp.write(b"x")
    tmp.close()
