"""socket.getaddrinfo from N threads at once (CPython calls glibc's getaddrinfo without
the GIL). usage: python3 gai_threads.py NAME THREADS"""
import socket
import sys
import threading

name, n = sys.argv[1], int(sys.argv[2])
barrier = threading.Barrier(n)
out: list[str] = []


def one() -> None:
    barrier.wait(timeout=10)
    try:
        out.append(socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)[0][4][0])
    except OSError as e:
        out.append(f"error {e}")


threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=60)
print("\n".join(out))
sys.exit(0 if all(not o.startswith("error") for o in out) else 1)
