"""Runs a command in a pseudo-terminal: what this script reads on stdin is typed into it, what it
writes comes out on stdout, and this script exits with its status (128 + N for signal N). The
integration tests use it to drive `allm run`'s interactive chat as a person at a terminal would."""
import os
import pty
import select
import sys


def main():
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    typing = True
    while True:
        readable, _, _ = select.select([master] + ([0] if typing else []), [], [])
        if 0 in readable:
            data = os.read(0, 4096)
            if data:
                os.write(master, data)
            else:
                typing = False
        if master in readable:
            try:
                data = os.read(master, 4096)
            except OSError:  # the command ended and the terminal closed
                break
            if not data:
                break
            os.write(1, data)
    _, status = os.waitpid(pid, 0)
    sys.exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


main()
