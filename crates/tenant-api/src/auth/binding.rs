//! Credentials bound to a store or a terminal, and what a caller may see.
//!
//! A merchant key (or a token it mints) may be bound to one of the merchant's stores, or to one
//! terminal of a store. A bound credential creates payments only there (the store and terminal
//! are filled in when the request names none; naming another is 403 `credential_bound`), reads
//! only that store's or terminal's payments and refunds (another one's is a 404, lists are
//! filtered), and cannot manage what lies beyond its binding. [`Access`] is what every payment
//! and refund route asks of the [`super::Principal`]: it decides visibility in one place.

use crate::error::{Error, Result};
use domain::{MerchantId, StoreId, TerminalId};

/// The 403 code of a bound credential naming, or asking for, something beyond its binding.
pub const CREDENTIAL_BOUND: &str = "credential_bound";

/// Where a bound credential may act: a store, or one terminal of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The store (for a terminal binding, the terminal's store).
    pub store_id: StoreId,
    /// The terminal, for a terminal binding.
    pub terminal_id: Option<TerminalId>,
}

impl Binding {
    /// Whether something taken at `store` / `terminal` lies inside this binding.
    pub fn covers(&self, store: Option<&StoreId>, terminal: Option<&TerminalId>) -> bool {
        store == Some(&self.store_id)
            && self
                .terminal_id
                .as_ref()
                .is_none_or(|t| terminal == Some(t))
    }

    /// Whether `inner` is this binding or narrower (a terminal of this store).
    pub fn contains(&self, inner: &Binding) -> bool {
        self.covers(Some(&inner.store_id), inner.terminal_id.as_ref())
    }

    /// Whether a credential bound `inner` (or unbound, `None`) lies inside `outer` (or
    /// anywhere, `None`).
    pub fn within(inner: Option<&Binding>, outer: Option<&Binding>) -> bool {
        match (inner, outer) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(i), Some(o)) => o.contains(i),
        }
    }

    /// A short text naming the binding, for messages.
    pub fn describe(&self) -> String {
        match &self.terminal_id {
            Some(t) => format!("terminal {t}"),
            None => format!("store {}", self.store_id),
        }
    }

    /// The 403 a bound credential gets for naming `what` beyond its binding.
    pub fn refusal(&self, what: &str) -> Error {
        Error::Forbidden {
            code: CREDENTIAL_BOUND,
            message: format!(
                "this credential is bound to {}: {what} lies beyond it",
                self.describe()
            ),
        }
    }

    /// The binding stored as a key's or a token's `(store_id, terminal_id)`; `None` when both
    /// are absent, `Err(())` when malformed (a terminal without its store, or a bad id).
    #[allow(clippy::result_unit_err)]
    pub fn from_parts(
        store_id: Option<&str>,
        terminal_id: Option<&str>,
    ) -> std::result::Result<Option<Binding>, ()> {
        match (store_id, terminal_id) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(()),
            (Some(s), t) => Ok(Some(Binding {
                store_id: StoreId::parse(s).map_err(|_| ())?,
                terminal_id: t.map(TerminalId::parse).transpose().map_err(|_| ())?,
            })),
        }
    }
}

/// A merchant credential's identity: the merchant, and its binding if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantCaller {
    /// The merchant.
    pub id: MerchantId,
    /// The store or terminal it is bound to.
    pub binding: Option<Binding>,
}

impl MerchantCaller {
    /// The idempotency scope of this caller's creates under `base` (the merchant's scope as
    /// before bindings existed): a bound credential gets its own, so an `Idempotency-Key` of
    /// one terminal never replays another terminal's (or the whole merchant's) answer.
    pub fn idempotency_scope(&self, base: &str) -> String {
        match &self.binding {
            None => base.to_owned(),
            Some(b) => match &b.terminal_id {
                None => format!("{base}@{}", b.store_id),
                Some(t) => format!("{base}@{}/{t}", b.store_id),
            },
        }
    }

    /// Refuses a bound credential (403 `credential_bound`): for what only an unbound merchant
    /// credential may do (managing stores, …), `what` naming it.
    pub fn unbound(&self, what: &str) -> Result<&MerchantId> {
        match &self.binding {
            None => Ok(&self.id),
            Some(b) => Err(b.refusal(what)),
        }
    }
}

/// What a caller may read: everything (an operator), or one merchant's objects, within the
/// credential's binding when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// An operator: every merchant's objects.
    Operator,
    /// A merchant credential.
    Merchant(MerchantCaller),
}

impl Access {
    /// Whether an object of `merchant` taken at `store` / `terminal` is visible: what decides
    /// every single-object read (a payment, a refund) — an invisible one is answered 404.
    pub fn sees(
        &self,
        merchant: &MerchantId,
        store: Option<&StoreId>,
        terminal: Option<&TerminalId>,
    ) -> bool {
        match self {
            Access::Operator => true,
            Access::Merchant(c) => {
                &c.id == merchant && c.binding.as_ref().is_none_or(|b| b.covers(store, terminal))
            }
        }
    }

    /// The merchant a list is scoped to (`None`: an operator's search across merchants, then
    /// `asked`, the operator's own `merchant_id` filter).
    pub fn merchant_scope(&self, asked: Option<MerchantId>) -> Option<MerchantId> {
        match self {
            Access::Operator => asked,
            // A merchant's list is its own, whatever it named.
            Access::Merchant(c) => Some(c.id.clone()),
        }
    }

    /// The store and terminal filters of a list: the caller's `asked` ones, narrowed to the
    /// binding. A bound credential naming another store (or, terminal-bound, another terminal)
    /// gets 403 `credential_bound`; a store-bound one naming a terminal keeps it (a terminal of
    /// another store then simply matches nothing).
    pub fn location_scope(
        &self,
        store: Option<StoreId>,
        terminal: Option<TerminalId>,
    ) -> Result<(Option<StoreId>, Option<TerminalId>)> {
        let Access::Merchant(MerchantCaller {
            binding: Some(b), ..
        }) = self
        else {
            return Ok((store, terminal));
        };
        if let Some(s) = &store
            && s != &b.store_id
        {
            return Err(b.refusal(&format!("store {s}")));
        }
        let terminal = match (&b.terminal_id, terminal) {
            (Some(bound), Some(t)) if &t != bound => {
                return Err(b.refusal(&format!("terminal {t}")));
            }
            (Some(bound), _) => Some(bound.clone()),
            (None, t) => t,
        };
        Ok((Some(b.store_id.clone()), terminal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreId {
        StoreId::generate()
    }

    #[test]
    fn a_terminal_binding_covers_its_terminal_only_and_a_store_binding_its_store() {
        let (s, other) = (store(), store());
        let (t, t2) = (TerminalId::generate(), TerminalId::generate());
        let at_store = Binding {
            store_id: s.clone(),
            terminal_id: None,
        };
        let at_terminal = Binding {
            store_id: s.clone(),
            terminal_id: Some(t.clone()),
        };
        assert!(at_store.covers(Some(&s), None));
        assert!(at_store.covers(Some(&s), Some(&t2)));
        assert!(!at_store.covers(Some(&other), None));
        assert!(!at_store.covers(None, None), "a payment at no store");
        assert!(at_terminal.covers(Some(&s), Some(&t)));
        assert!(!at_terminal.covers(Some(&s), Some(&t2)));
        assert!(!at_terminal.covers(Some(&s), None));
        assert!(at_store.contains(&at_terminal));
        assert!(!at_terminal.contains(&at_store), "no widening");
        assert!(Binding::within(Some(&at_terminal), Some(&at_store)));
        assert!(!Binding::within(None, Some(&at_store)));
        assert!(Binding::within(None, None));
    }

    #[test]
    fn a_bound_list_is_narrowed_and_another_store_is_refused() {
        let (s, other) = (store(), store());
        let t = TerminalId::generate();
        let access = Access::Merchant(MerchantCaller {
            id: MerchantId::generate(),
            binding: Some(Binding {
                store_id: s.clone(),
                terminal_id: Some(t.clone()),
            }),
        });
        assert_eq!(
            access.location_scope(None, None).expect("scope"),
            (Some(s.clone()), Some(t.clone()))
        );
        assert!(access.location_scope(Some(other), None).is_err());
        assert!(
            access
                .location_scope(None, Some(TerminalId::generate()))
                .is_err()
        );
        assert_eq!(
            Access::Operator
                .location_scope(None, Some(t.clone()))
                .expect("operator"),
            (None, Some(t))
        );
    }

    #[test]
    fn stored_parts_parse_into_a_binding_or_are_refused() {
        let s = store();
        let t = TerminalId::generate();
        assert_eq!(Binding::from_parts(None, None), Ok(None));
        assert!(Binding::from_parts(None, Some(t.as_str())).is_err());
        assert!(Binding::from_parts(Some("nope"), None).is_err());
        assert_eq!(
            Binding::from_parts(Some(s.as_str()), Some(t.as_str())),
            Ok(Some(Binding {
                store_id: s,
                terminal_id: Some(t)
            }))
        );
    }
}
