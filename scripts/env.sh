# Shared settings for the scripts: one cargo target directory and tool cache for every command.
export CACHE_DIR="${RLHF_CACHE_DIR:-$HOME/.cache/rlhf-lab}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_DIR/target}"
export PATH="$CACHE_DIR/tools/bin:$HOME/.cargo/bin:$PATH"
# Mesa warns without a private runtime dir; give it one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$CACHE_DIR/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
WASM_BINDGEN_VERSION=0.2.130
