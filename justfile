# ztpd tasks. `just run` starts the demo site; `just test` runs everything CI runs;
# `just check` is the fast loop (fmt, clippy, unit tests).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list --unsorted

venv := justfile_directory() / ".venv"
policy_dir := justfile_directory() / "target/wasm32-wasip2/policy"

# Start the demo site (1000 Arista switches) on 127.0.0.1:8080 (ZTPD_LISTEN overrides).
run: policies
    cargo run --release -p ztpd -- serve

# (The examples in policies/ and the test policies in tests/policies/.)
# Build every policy to a WebAssembly component in target/wasm32-wasip2/policy/.
policies: wasm-target
    cargo build --target wasm32-wasip2 --profile policy \
        $(for d in policies/*/ tests/policies/*/; do printf -- '-p %s ' "$(basename "$d")"; done)
    @ls -1 {{policy_dir}}/*.wasm

# Install the wasm32-wasip2 target if this toolchain lacks it.
wasm-target:
    @rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Python tools the tests use (Jinja2 for fixtures, fakenos as an SSH peer), in a local venv.
venv:
    @test -x {{venv}}/bin/python || python3 -m venv {{venv}}
    @{{venv}}/bin/python -c 'import jinja2, fakenos' 2>/dev/null || {{venv}}/bin/pip install --quiet jinja2 pyyaml -r tests/peers/requirements.txt

# Debian packages the tests start (sshd; PostgreSQL and Redis for NetBox), in one apt run; needs root.
peers:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    test -x /usr/sbin/sshd || missing+=(openssh-server)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v pg_config >/dev/null || missing+=(libpq-dev)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi

# Start the tests' NetBox (tests/peers/netbox) in the background: its migrations overlap the build.
netbox-start: peers
    @mkdir -p target
    @[ -n "${ZTPD_SKIP_NETBOX:-}" ] || nohup bash tests/peers/netbox/start_netbox.sh target/netbox-state > target/netbox-start.log 2>&1 &

# Stop the tests' NetBox.
netbox-stop:
    bash tests/peers/netbox/stop_netbox.sh target/netbox-state

# (iproute2 namespaces, dhclient as the client, dhcpd, kea-dhcp4 and dnsmasq to check exports)
# Debian's DHCP tools the DHCP tests use; needs root.
dhcp-tools:
    @test -x /usr/sbin/dhclient -a -x /usr/sbin/dhcpd -a -x /usr/sbin/kea-dhcp4 -a -x /usr/sbin/dnsmasq -a -x /usr/bin/curl -a -x /usr/sbin/ip || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 isc-dhcp-client isc-dhcp-server kea-dhcp4-server dnsmasq-base curl)

# (The example policies' tests run natively, through the SDK's test harness.)
# The fast loop: format check, lints, the host's unit tests, the example policies' tests.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test -p ztpd --lib --test layering
    cargo test -p ztpd-guest -p arista-dynamic -p iosxe-callback -p iosxe-netbox

# (Root tests: DHCP in network namespaces and a real NetBox, which `cargo test` ignores.
# ZTPD_SKIP_NETBOX=1 leaves the NetBox tests out, saying so.)
# Everything CI runs: fmt, clippy, unit, end-to-end and root tests.
test: peers dhcp-tools netbox-start policies venv
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo build -p ztpd
    ZTPD_POLICY_DIR={{policy_dir}} ZTPD_VENV={{venv}} cargo test --workspace
    cargo test -p ztpd-guest -p arista-dynamic -p iosxe-callback -p iosxe-netbox
    just test-root

# (They fail, saying why, where they cannot run; they never pass without running.)
# The tests a plain `cargo test` ignores: DHCP in network namespaces and the real NetBox.
test-root:
    #!/usr/bin/env bash
    set -euo pipefail
    export ZTPD_POLICY_DIR={{policy_dir}} ZTPD_VENV={{venv}}
    if [ "$(id -u)" != 0 ]; then
        echo "just test-root: the DHCP and NetBox tests need root; they were NOT run" >&2
        [ "${CI:-}" != true ] || exit 1
        exit 0
    fi
    cargo test -p ztpd-e2e --test dhcp -- --ignored
    if [ -n "${ZTPD_SKIP_NETBOX:-}" ]; then
        echo "just test-root: ZTPD_SKIP_NETBOX is set; the NetBox tests were NOT run" >&2
    else
        cargo test -p ztpd-e2e --test netbox -- --ignored
    fi

# Print what one device would receive (dry run), e.g. just render 00:1c:73:00:00:01
render mac: policies
    cargo run -q -p ztpd -- render --header "X-Arista-SystemMAC: {{mac}}"

# (wrk, the load generator, comes from Debian: installed with apt when missing, which needs root.)
# Benchmarks: ztpd vs the baseline Python servers (bench/baseline), and the in-process policy call.
bench: policies venv
    @command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
    cargo build --release -p ztpd
    cargo bench -p ztpd --bench policy_call
    {{venv}}/bin/python bench/run.py
