//! The protocol's state machines: prekey rotation and erasure, device
//! supersession, the revocation ledger, and safety numbers.

mod common;

use common::*;
use mayfly_protocol::codec::Codec;
use mayfly_protocol::*;
use proptest::prelude::*;

#[test]
fn a_higher_serial_supersedes_the_old_device() {
    let mut rng = rng(1);
    let id = Identity::generate(&mut rng);
    let other = Identity::generate(&mut rng);
    let d1 = id.new_device(1, NOW, &mut rng);
    let d2 = id.new_device(2, NOW.plus(1), &mut rng);
    let foreign = other.new_device(9, NOW, &mut rng);
    assert!(d2.certificate().supersedes(d1.certificate()));
    assert!(!d1.certificate().supersedes(d2.certificate()));
    assert!(
        !foreign.certificate().supersedes(d1.certificate()),
        "another identity never supersedes"
    );
    assert_eq!(
        d1.certificate().check_identity(&other.public()),
        Err(Error::WrongSigner)
    );
    // A device secret that does not match its certificate is refused.
    assert!(Device::from_parts(d1.secret().clone(), d2.certificate().clone()).is_err());
    assert!(Device::from_parts(d2.secret().clone(), d2.certificate().clone()).is_ok());
}

#[test]
fn signed_prekeys_rotate_and_are_erased_after_their_window() {
    let mut rng = rng(2);
    let p = Party::new(&mut rng);
    let mut store = PrekeyStore::new(&p.device, NOW, &mut rng);
    let first = store.signed_prekey().public();
    assert!(
        store
            .rotate_if_due(&p.device, NOW.plus(SIGNED_PREKEY_ROTATION_MS - 1), &mut rng)
            .is_none()
    );
    let second = store
        .rotate_if_due(&p.device, NOW.plus(SIGNED_PREKEY_ROTATION_MS), &mut rng)
        .expect("rotated");
    assert_ne!(second.public(), first);
    second.verify(&p.device.certificate().device_key()).unwrap();
    // The retired key still opens envelopes until its erase time...
    assert!(store.take_secret(&first).is_some());
    store.erase_expired(NOW.plus(SIGNED_PREKEY_ERASE_AFTER_MS - 1));
    assert!(store.take_secret(&first).is_some());
    // ...and not after.
    store.erase_expired(NOW.plus(SIGNED_PREKEY_ERASE_AFTER_MS));
    assert!(store.take_secret(&first).is_none());
    assert!(store.take_secret(&second.public()).is_some());
}

#[test]
fn senders_refuse_stale_or_foreign_bundles() {
    let mut rng = rng(3);
    let p = Party::new(&mut rng);
    let q = Party::new(&mut rng);
    let bundle = PrekeyBundle {
        certificate: p.device.certificate().clone(),
        signed_prekey: p.prekeys.signed_prekey().clone(),
        one_time_prekey: None,
    };
    assert!(
        bundle
            .verify(&p.identity.public(), NOW.plus(SIGNED_PREKEY_MAX_AGE_MS))
            .is_ok()
    );
    assert_eq!(
        bundle.verify(&p.identity.public(), NOW.plus(SIGNED_PREKEY_MAX_AGE_MS + 1)),
        Err(Error::Expired)
    );
    assert_eq!(
        bundle.verify(&q.identity.public(), NOW),
        Err(Error::WrongSigner)
    );
    // A prekey signed by another device.
    let swapped = PrekeyBundle {
        signed_prekey: q.prekeys.signed_prekey().clone(),
        ..bundle.clone()
    };
    assert!(matches!(
        swapped.verify(&p.identity.public(), NOW),
        Err(Error::BadSignature(_))
    ));
    // A signed prekey offered as a one-time prekey.
    let wrong_kind = PrekeyBundle {
        one_time_prekey: Some(p.prekeys.signed_prekey().clone()),
        ..bundle
    };
    assert!(wrong_kind.verify(&p.identity.public(), NOW).is_err());
}

#[test]
fn one_time_prekeys_are_bounded() {
    let mut rng = rng(4);
    let p = Party::new(&mut rng);
    let mut store = PrekeyStore::new(&p.device, NOW, &mut rng);
    let issued = store.issue_one_time(&p.device, MAX_ONE_TIME_PREKEYS + 50, NOW, &mut rng);
    assert_eq!(issued.len(), MAX_ONE_TIME_PREKEYS);
    assert!(store.issue_one_time(&p.device, 1, NOW, &mut rng).is_empty());
    assert!(store.take_secret(&issued[0].public()).is_some());
    assert_eq!(store.issue_one_time(&p.device, 5, NOW, &mut rng).len(), 1);
}

#[test]
fn revocation_is_idempotent_and_only_the_sender_can_revoke() {
    let mut rng = rng(5);
    let (clip, _) = seal(&content(100, 1), &mut rng);
    let rec = clip.revoke(NOW.plus(10));
    let rec = RevocationRecord::decode(&rec.to_bytes()).unwrap();
    assert_eq!(rec.message_id(), clip.message_id());
    assert_eq!(rec.revocation_key(), clip.manifest().revocation_key());
    let mut ledger = RevocationLedger::new(10);
    assert_eq!(ledger.apply(&rec, NOW.plus(20)), Ok(Applied::Revoked));
    assert_eq!(
        ledger.apply(&rec, NOW.plus(30)),
        Ok(Applied::AlreadyRevoked)
    );
    // A later record from the sender is a replay too.
    assert_eq!(
        ledger.apply(&clip.revoke(NOW.plus(40)), NOW.plus(40)),
        Ok(Applied::AlreadyRevoked)
    );
    assert!(ledger.is_revoked(&clip.message_id()));
    assert_eq!(ledger.len(), 1);

    // Someone else signs a record naming this message: it does not decode.
    let forger = SigningSecret::generate(&mut rng);
    let mut forged = RevocationRecord::sign(&forger, NOW).to_bytes();
    forged[2..34].copy_from_slice(&clip.message_id().0);
    assert!(RevocationRecord::decode(&forged).is_err());
}

#[test]
fn unknown_messages_become_tombstones_that_expire() {
    let mut rng = rng(6);
    let mut ledger = RevocationLedger::new(2);
    let a = RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW);
    let b = RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW);
    let c = RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW);
    assert_eq!(ledger.apply(&a, NOW), Ok(Applied::Revoked));
    assert_eq!(ledger.apply(&b, NOW), Ok(Applied::Revoked));
    assert_eq!(ledger.apply(&c, NOW), Err(Error::Full("revocation ledger")));
    let keep = ledger.get(&a.message_id()).unwrap().keep_until;
    assert_eq!(keep, NOW.plus(MAX_CLIP_TTL_MS + 2 * MAX_CLOCK_SKEW_MS));
    assert_eq!(ledger.collect(UnixMillis(keep.0 - 1)), 0);
    assert_eq!(ledger.collect(keep), 2);
    assert!(ledger.is_empty());
    assert_eq!(ledger.apply(&c, keep), Ok(Applied::Revoked));
    // A record dated beyond the allowed clock skew is refused.
    let future = RevocationRecord::sign(
        &SigningSecret::generate(&mut rng),
        NOW.plus(MAX_CLOCK_SKEW_MS + 1),
    );
    assert_eq!(
        RevocationLedger::new(5).apply(&future, NOW),
        Err(Error::FromTheFuture)
    );
}

proptest! {
    #[test]
    fn ledger_revokes_exactly_what_was_applied(ops in prop::collection::vec((0usize..6, 0u64..40), 1..60)) {
        let mut rng = rng(7);
        let recs: Vec<_> = (0..6).map(|_| RevocationRecord::sign(&SigningSecret::generate(&mut rng), NOW)).collect();
        let mut ledger = RevocationLedger::new(100);
        let mut applied = std::collections::BTreeSet::new();
        for (i, day) in ops {
            let now = NOW.plus(day * DAY_MS);
            ledger.collect(now);
            // The model: tombstones live for MAX_CLIP_TTL + 2 skews after application.
            applied.retain(|(_, t): &(usize, UnixMillis)| t.plus(MAX_CLIP_TTL_MS + 2 * MAX_CLOCK_SKEW_MS) > now);
            let was = applied.iter().any(|(j, _)| *j == i);
            let out = ledger.apply(&recs[i], now).unwrap();
            prop_assert_eq!(out == Applied::AlreadyRevoked, was);
            if !was {
                applied.insert((i, now));
            }
            for (j, r) in recs.iter().enumerate() {
                prop_assert_eq!(ledger.is_revoked(&r.message_id()), applied.iter().any(|(k, _)| *k == j));
            }
        }
    }
}

#[test]
fn safety_numbers_are_symmetric_and_distinct() {
    let mut rng = rng(8);
    let a = Identity::generate(&mut rng).public();
    let b = Identity::generate(&mut rng).public();
    let c = Identity::generate(&mut rng).public();
    let ab = safety_number(&a, &b);
    assert_eq!(ab, safety_number(&b, &a));
    assert_ne!(ab, safety_number(&a, &c));
    assert_eq!(ab.split(' ').count(), 12);
    assert!(
        ab.split(' ')
            .all(|g| g.len() == 5 && g.bytes().all(|d| d.is_ascii_digit()))
    );
}

#[test]
fn card_recipient_uses_the_signed_prekey_while_fresh() {
    let mut rng = rng(9);
    let p = Party::new(&mut rng);
    let card = ContactCard::new(
        &p.identity,
        &p.device,
        p.prekeys.signed_prekey().clone(),
        vec![],
        "P".into(),
    )
    .unwrap();
    let r = card.recipient(NOW).unwrap();
    assert_eq!(r.prekey, p.prekeys.signed_prekey().public());
    assert_eq!(
        card.recipient(NOW.plus(SIGNED_PREKEY_MAX_AGE_MS + 1)),
        Err(Error::Expired)
    );
}

#[test]
fn stale_one_time_prekeys_fall_back_to_the_signed_prekey_and_are_erased() {
    let mut rng = rng(10);
    let p = Party::new(&mut rng);
    let mut store = PrekeyStore::new(&p.device, NOW, &mut rng);
    let otk = store.issue_one_time(&p.device, 1, NOW, &mut rng).remove(0);
    // The signed prekey rotates meanwhile, so it is still fresh when the one-time prekey is not.
    let spk = store
        .rotate_if_due(&p.device, NOW.plus(SIGNED_PREKEY_ROTATION_MS), &mut rng)
        .expect("rotated");
    let bundle = PrekeyBundle {
        certificate: p.device.certificate().clone(),
        signed_prekey: spk,
        one_time_prekey: Some(otk.clone()),
    };
    let fresh = bundle
        .verify(&p.identity.public(), NOW.plus(ONE_TIME_PREKEY_MAX_AGE_MS))
        .unwrap();
    assert_eq!(fresh.prekey, otk.public());
    let stale = bundle
        .verify(
            &p.identity.public(),
            NOW.plus(ONE_TIME_PREKEY_MAX_AGE_MS + 1),
        )
        .unwrap();
    assert_eq!(stale.prekey, store.signed_prekey().public());
    store.erase_expired(NOW.plus(ONE_TIME_PREKEY_ERASE_AFTER_MS - 1));
    assert_eq!(store.one_time_count(), 1);
    store.erase_expired(NOW.plus(ONE_TIME_PREKEY_ERASE_AFTER_MS));
    assert_eq!(store.one_time_count(), 0);
    assert!(store.take_secret(&otk.public()).is_none());
}

#[test]
fn a_long_offline_device_erases_its_old_signed_prekey_when_it_rotates() {
    let mut rng = rng(11);
    let p = Party::new(&mut rng);
    let mut store = PrekeyStore::new(&p.device, NOW, &mut rng);
    let old = store.signed_prekey().public();
    // Back after a month: rotation retires the old key and erases it in the same call.
    let new = store
        .rotate_if_due(&p.device, NOW.plus(30 * DAY_MS), &mut rng)
        .expect("rotated");
    assert!(store.take_secret(&old).is_none());
    assert!(store.take_secret(&new.public()).is_some());
}

#[test]
fn a_card_must_carry_a_signed_prekey() {
    let mut rng = rng(12);
    let p = Party::new(&mut rng);
    let mut store = PrekeyStore::new(&p.device, NOW, &mut rng);
    let otk = store.issue_one_time(&p.device, 1, NOW, &mut rng).remove(0);
    assert!(matches!(
        ContactCard::new(&p.identity, &p.device, otk, vec![], "p".into()),
        Err(Error::InvalidParams(_))
    ));
}
