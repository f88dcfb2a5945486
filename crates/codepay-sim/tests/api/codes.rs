//! The contract between the simulator and payfac's client: every code the simulator can answer
//! with is one the client classifies, with the meaning the simulator gives it. Without this the
//! engine could leave an order waiting forever on a code only the simulator knows.

use codepay_sim::codes::{CODES, ErrorKind};
use gateway_client::codes::{self, CodeClass};

#[test]
fn the_client_classifies_every_code_the_simulator_sends() {
    for (kind, row) in CODES {
        let sent = kind.err().code;
        let class = codes::classify(sent);
        assert_ne!(class, CodeClass::Unrecognised, "{kind:?} answers {sent}");
        assert_eq!(class, row.class, "{kind:?} answers {sent}");
        assert!(
            codes::CODES.iter().any(|c| c == *row),
            "{kind:?}'s row {sent} is not in the client's table"
        );
    }
}

#[test]
fn not_found_and_duplicate_mean_what_the_engine_acts_on() {
    for kind in [ErrorKind::OrderNotFound, ErrorKind::OrderNotFoundByTransNo] {
        let code = kind.err().code;
        assert_eq!(codes::classify(code), CodeClass::OrderNotFound, "{kind:?}");
        assert!(codes::is_order_not_found(code), "{kind:?}");
    }
    assert_eq!(
        codes::classify(ErrorKind::not_found(true).err().code),
        CodeClass::OrderNotFound
    );
    assert_eq!(
        codes::classify(ErrorKind::not_found(false).err().code),
        CodeClass::OrderNotFound
    );
    let duplicate = ErrorKind::DuplicateOrderNo.err().code;
    assert_eq!(codes::classify(duplicate), CodeClass::DuplicateOrderNo);
    assert!(codes::is_duplicate_order_no(duplicate));
    // No other kind may be read as not-found: the engine closes or resubmits on it.
    for (kind, _) in CODES {
        let not_found = matches!(
            kind,
            ErrorKind::OrderNotFound | ErrorKind::OrderNotFoundByTransNo
        );
        assert_eq!(
            codes::is_order_not_found(kind.err().code),
            not_found,
            "{kind:?}"
        );
    }
}
