"""kubeadm's errors and how the top-level handler prints them, per version.

Every failure exits 1 (kubeadm's phase runner wraps errors, so the 2/3 codes of old releases are
never observed). Up to 1.33 the message is printed as is; from 1.34 kubeadm's own error package
prefixes ``error: `` and writes the preflight block straight to stderr.
"""

STACK_TRACE_HINT = "To see the stack trace of this error execute with --v=5 or higher"
PREFLIGHT_HINT = (
    "[preflight] If you know what you are doing, you can make a check non-fatal with "
    "`--ignore-preflight-errors=...`"
)
EXIT_FAILURE = 1


class KubeadmError(Exception):
    """A failure with kubeadm's message (without the phase prefix)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class PreflightError(KubeadmError):
    """Fatal preflight checks: ``errors`` is a list of (check name, message)."""

    def __init__(self, errors):
        self.errors = list(errors)
        lines = ["[preflight] Some fatal errors occurred:"]
        lines += [f"\t[ERROR {name}]: {message}" for name, message in self.errors]
        lines.append(PREFLIGHT_HINT)
        self.block = "\n".join(lines)
        super().__init__(self.block)


class PhaseError(KubeadmError):
    """An error raised inside a workflow phase: ``error execution phase <phase>: <cause>``."""

    def __init__(self, phase, cause):
        self.phase = phase
        self.cause = cause
        super().__init__(f"error execution phase {phase}: {cause}")


def new_error_style(version):
    return version >= (1, 34)


def render(error, version):
    """The text kubeadm writes to stderr for ``error`` (ends with a newline)."""
    cause = error.cause if isinstance(error, PhaseError) else error
    if new_error_style(version):
        prefix = ""
        if isinstance(cause, PreflightError):
            prefix = cause.block + "\n"
            message = f"error execution phase {error.phase}: preflight checks failed" \
                if isinstance(error, PhaseError) else "preflight checks failed"
        else:
            message = str(error)
        return f"{prefix}error: {message}\n{STACK_TRACE_HINT}\n"
    return f"{error}\n{STACK_TRACE_HINT}\n"
