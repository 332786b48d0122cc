//! The words of the shop-service domain, defined once.
//!
//! Intents, sentiment labels, request labels, helpdesk queues, turn roles
//! and handoff reasons are enums inside xiaoer; their names appear as
//! strings only at the edges — data files, the gRPC contract, the database
//! — where [`std::str::FromStr`] and [`std::fmt::Display`] convert them.
//! The names are fixed because other systems send and store them.
//!
//! [`hours`] holds the shop's service hours and the arithmetic of handoff
//! due times, which count only the time the service team is working.

use std::fmt;

pub mod hours;

pub use hours::{parse_date, HoursError, ServiceHours};

/// A name that is not part of a vocabulary, with the vocabulary's kind so
/// the error says what was expected ("unknown intent \"returns\"").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// Which vocabulary was asked ("intent", "queue", …).
    pub kind: &'static str,
    /// The name as given.
    pub name: String,
    /// The accepted names, comma separated.
    pub expected: String,
}

/// Defines a closed vocabulary: the enum, its `ALL` list in a fixed order,
/// `as_str`, `Display`, `FromStr` and serde as the same snake_case names.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order models and reports list them.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The name used in data files, the contract and the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(name: &str) -> Result<Self, UnknownName> {
                match name {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownName {
                        kind: $kind,
                        name: name.to_string(),
                        expected: [$( $text ),+].join(", "),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

vocabulary! {
    /// What a shopper's message is about: the intent head's classes, in the
    /// order the head reports them. Policy, phrasing, queues and the
    /// knowledge base's article links all key on these.
    Intent ("intent") {
        Greeting = "greeting",
        ThanksGoodbye = "thanks_goodbye",
        ProductInfo = "product_info",
        SizeAdvice = "size_advice",
        StockAvailability = "stock_availability",
        PriceAndPromotions = "price_and_promotions",
        ShippingOptions = "shipping_options",
        OrderTracking = "order_tracking",
        ModifyOrder = "modify_order",
        CancelOrder = "cancel_order",
        PaymentMethods = "payment_methods",
        PaymentProblem = "payment_problem",
        InvoiceRequest = "invoice_request",
        ReturnRequest = "return_request",
        ExchangeRequest = "exchange_request",
        RefundStatus = "refund_status",
        DamagedOrWrongItem = "damaged_or_wrong_item",
        WarrantyRepair = "warranty_repair",
        AccountAccess = "account_access",
        MembershipAndPoints = "membership_and_points",
        ServiceHours = "service_hours",
        /// The shopper asks for a person.
        HumanAgent = "human_agent",
        Complaint = "complaint",
        /// Not about shopping here; also the answer below the confidence
        /// threshold.
        OutOfScope = "out_of_scope",
    }
}

vocabulary! {
    /// The sentiment head's classes; only `Angry` changes what the bot does.
    SentimentLabel ("sentiment label") {
        /// Happy, thankful, praising.
        Positive = "positive",
        /// Plain questions and requests.
        Neutral = "neutral",
        /// Disappointed or unhappy but calm: answered normally.
        Negative = "negative",
        /// Insults, threats, shouting, "third time I ask": handed off.
        Angry = "angry",
    }
}

vocabulary! {
    /// Whether a message asks for something only staff can do (change a
    /// shipped order, reship, make an exception) or something the shopper
    /// can do with the bot's help.
    RequestLabel ("request label") {
        SelfService = "self_service",
        StaffAction = "staff_action",
    }
}

vocabulary! {
    /// Helpdesk queues that handoffs are routed to; each is a team.
    Queue ("queue") {
        Logistics = "logistics",
        AfterSales = "after_sales",
        Payments = "payments",
        Presale = "presale",
        Complaints = "complaints",
        General = "general",
    }
}

vocabulary! {
    /// Who wrote a turn of a conversation.
    TurnRole ("turn role") {
        Customer = "customer",
        Bot = "bot",
        Agent = "agent",
    }
}

vocabulary! {
    /// Why a conversation went to a person. Stored and written in case files
    /// in upper case, as the contract's `HandoffReason` values are named.
    HandoffReason ("handoff reason") {
        /// The shopper asked for a person.
        CustomerRequest = "CUSTOMER_REQUEST",
        /// The shopper is angry.
        NegativeSentiment = "NEGATIVE_SENTIMENT",
        /// The bot failed to understand twice in a row.
        LowConfidence = "LOW_CONFIDENCE",
        /// The request needs a person's authority (complaints, shipped
        /// orders, refunds now).
        NeedsAgent = "NEEDS_AGENT",
    }
}

#[cfg(test)]
mod tests;
