//! Prints the measured shape of circuit configurations: `cargo run --example shapes -- D:S ...`
//! (default: the benchmark configurations).

use pogo_circuits::config::CircuitConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let configs: Vec<(u32, usize)> = if args.is_empty() {
        vec![(10, 1), (10, 8), (10, 32), (20, 1), (20, 8), (20, 32)]
    } else {
        args.iter()
            .map(|a| {
                let (d, s) = a.split_once(':').ok_or("arguments are D:S")?;
                Ok((d.parse()?, s.parse()?))
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?
    };
    println!("{:>4} {:>4} {:>3} {:>7} {:>12} {:>15}", "D", "S", "k", "lookup", "advice cells", "cells/sample");
    for (depth, samples) in configs {
        let shape = CircuitConfig::new(depth, samples)?.shape()?;
        println!(
            "{depth:>4} {samples:>4} {:>3} {:>7} {:>12} {:>15}",
            shape.k,
            shape.lookup_bits,
            shape.advice_cells,
            shape.advice_cells / samples
        );
    }
    Ok(())
}
