"""Command line of sgdprob.

``python -m sgdprob [--plots DIR]``   the report (sgdprob.report)
``python -m sgdprob bench [...]``     the benchmark (sgdprob.bench)
"""
import os
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main
        try:
            return bench_main(argv[1:])
        except BrokenPipeError:
            # the reader stopped reading (| head): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    from .report import main as report_main
    return report_main(argv)


if __name__ == "__main__":
    sys.exit(main())
