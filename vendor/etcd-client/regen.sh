#!/bin/sh
# Writes src/rpc/pb/*.rs again from proto/, as etcd-client's own build script did at every
# build (client side only). Needs protoc and protobuf's well-known .proto files (Debian:
# protobuf-compiler libprotobuf-dev) and crates.io; no build of colony runs it.
# The versions below are those the committed files were generated with: change them together
# with tonic and prost in Cargo.lock.
set -eu
cd "$(dirname "$0")"
here=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src" "$tmp/out"
cat > "$tmp/Cargo.toml" <<'TOML'
[package]
name = "etcd-client-regen"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
tonic-prost-build = "=0.14.9"
prost-build = "=0.14.6"
TOML
cat > "$tmp/src/main.rs" <<'RUST'
fn main() {
    let mut args = std::env::args().skip(1);
    let (proto, out) = (args.next().unwrap(), args.next().unwrap());
    let files = [
        "etcd/api/authpb/auth.proto",
        "etcd/api/etcdserverpb/rpc.proto",
        "etcd/api/mvccpb/kv.proto",
        "etcd/server/etcdserver/api/v3election/v3electionpb/v3election.proto",
        "etcd/server/etcdserver/api/v3lock/v3lockpb/v3lock.proto",
    ]
    .map(|f| format!("{proto}/{f}"));
    tonic_prost_build::configure()
        .build_server(false)
        .out_dir(out)
        .compile_protos(&files, &[proto])
        .expect("Failed to compile proto files");
}
RUST
CARGO_TARGET_DIR="$tmp/target" cargo run -q --manifest-path "$tmp/Cargo.toml" -- "$here/proto" "$tmp/out" >/dev/null
# google.api and openapiv2 come from imports that only annotate the API: not used.
for m in authpb etcdserverpb mvccpb v3electionpb v3lockpb; do
  cp "$tmp/out/$m.rs" "src/rpc/pb/$m.rs"
done
echo "src/rpc/pb/ written"
