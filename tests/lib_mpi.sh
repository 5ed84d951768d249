# lib_mpi.sh — sourced by the 2-rank shell tests (cli_mpi_*.sh): strict mode, the binary and source tree, one
# OpenMP thread per rank (so that only the rank count differs between compared runs), mpirun as root, a temporary
# directory ($TMP, kept when KEEP_TMP is set, every process still using it killed at exit), fail and mpi2.
set -euo pipefail
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d)
[[ -n ${KEEP_TMP:-} ]] && echo "keeping temporaries in $TMP"
trap 'pkill -9 -f "$TMP" 2>/dev/null || true; [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2() { timeout 300 mpirun -np 2 "$CIRCD" "$@"; }
