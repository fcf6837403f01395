//! The mutation campaign of `pogo audit`: the sound circuit rejects every mutation, and
//! each weakened variant (one constraint dropped) is caught with a concrete survivor of
//! the class the dropped constraint protects.

use pogo_circuits::audit::{run, CellClass, MutationReport};
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::update_circuit::Variant;

fn campaign(variant: Variant) -> MutationReport {
    run(&CircuitConfig::new(2, 1).unwrap(), &variant, 5).unwrap()
}

fn survivor_classes(report: &MutationReport) -> Vec<CellClass> {
    let mut classes: Vec<CellClass> = report.survivors().map(|o| o.class).collect();
    classes.dedup();
    classes
}

#[test]
fn the_sound_circuit_rejects_every_mutation() {
    let report = campaign(Variant::Sound);
    assert!(report.honest_accepted);
    let survivors: Vec<_> = report.survivors().map(|o| o.mutation.clone()).collect();
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    // Every class of witness cell was exercised.
    for class in [
        CellClass::OldLimb,
        CellClass::NewLimb,
        CellClass::Nibble,
        CellClass::Scale,
        CellClass::Leaf,
        CellClass::Sibling,
        CellClass::PathBit,
        CellClass::HashState,
        CellClass::Index,
    ] {
        let summary = report.classes.iter().find(|c| c.class == class).expect("class tried");
        assert!(summary.tried >= 2 && summary.rejected == summary.tried, "{class:?}: {summary:?}");
    }
    assert!(report.passed());
}

#[test]
fn a_dropped_limb_range_check_is_caught() {
    let report = campaign(Variant::NoLimbRangeCheck);
    assert!(report.honest_accepted && !report.passed());
    assert_eq!(survivor_classes(&report), [CellClass::OldLimb]);
    let survivor = report.survivors().next().unwrap();
    assert!(survivor.mutation.contains("+ 2^32") && survivor.public_inputs.is_some());
}

#[test]
fn an_unconstrained_nibble_is_caught() {
    let report = campaign(Variant::NoNibbleRangeCheck);
    assert!(report.honest_accepted && !report.passed());
    assert_eq!(survivor_classes(&report), [CellClass::Nibble]);
}

#[test]
fn a_dropped_path_bit_constraint_is_caught() {
    let report = campaign(Variant::UnboundPathBits(Vec::new()));
    assert!(report.honest_accepted && !report.passed());
    assert!(survivor_classes(&report).contains(&CellClass::PathBit), "{:?}", survivor_classes(&report));
}
