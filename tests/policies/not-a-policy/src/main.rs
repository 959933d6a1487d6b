//! A valid WebAssembly component that is not a ztpd policy: it exports `wasi:cli/run`,
//! not `handle`. ztpd must refuse it at load time, naming the contract.

fn main() {
    println!("I am a WASI command, not a ztpd policy");
}
