use super::*;
use prost::Message;

fn token_set() -> (Tokens, [String; 3]) {
    let made = [
        NewToken::generate(Role::Storefront, Some("shop")).unwrap(),
        NewToken::generate(Role::Helpdesk, Some("desk")).unwrap(),
        NewToken::generate(Role::Admin, None).unwrap(),
    ];
    let secrets = made.each_ref().map(|m| m.token.clone());
    let tokens = Tokens::new(made.into_iter().map(|m| m.entry).collect()).unwrap();
    (tokens, secrets)
}

fn bearer(token: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

#[test]
fn the_table_covers_exactly_the_methods_of_the_contract() {
    let set = prost_types::FileDescriptorSet::decode(xiaoer_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set decodes");
    let mut contract = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                contract.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    assert!(contract.len() >= 10, "{contract:?}");
    for method in &contract {
        assert!(
            allowed_roles(method).is_some_and(|roles| !roles.is_empty()),
            "{method} has no access rule in METHOD_ROLES"
        );
        assert!(!is_open(method), "{method} must not be an open service");
    }
    for (path, roles) in METHOD_ROLES {
        assert!(
            contract.iter().any(|m| m == path),
            "{path} is not in the contract"
        );
        assert!(
            roles.contains(&Role::Admin),
            "admin may call everything, not {path}"
        );
    }
    let services = [
        xiaoer_proto::v1::auto_reply_server::SERVICE_NAME,
        xiaoer_proto::v1::handoffs_server::SERVICE_NAME,
        xiaoer_proto::v1::knowledge_base_server::SERVICE_NAME,
    ];
    for service in services {
        assert!(
            contract
                .iter()
                .any(|m| m.starts_with(&format!("/{service}/"))),
            "{service} missing from the descriptor set"
        );
    }
}

#[test]
fn hashes_round_trip_and_verify_only_their_token() {
    let made = NewToken::generate(Role::Helpdesk, Some("desk-1")).unwrap();
    assert!(made.token.starts_with(TOKEN_PREFIX));
    assert_eq!(made.token.len(), TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
    let printed = made.entry.hash.to_string();
    let parsed: TokenHash = printed.parse().unwrap();
    assert_eq!(parsed, made.entry.hash);
    assert!(parsed.matches(&made.token));
    assert!(!parsed.matches(&made.token[..made.token.len() - 1]));
    assert!(!parsed.matches(&format!("{} ", made.token)));
    assert!(!parsed.matches(""));
    // Same token, new salt: a different hash that still verifies.
    let again = TokenHash::new(&made.token);
    assert_ne!(again.to_string(), printed);
    assert!(again.matches(&made.token));
}

#[test]
fn bad_hashes_give_a_clear_error() {
    let digest = "ab".repeat(32);
    let cases = [
        ("", "three '$'-separated parts"),
        ("sha256$00112233445566778899", "three '$'-separated parts"),
        (
            &*format!("sha256$0011223344556677${digest}$x"),
            "three '$'-separated parts",
        ),
        (
            &*format!("md5$0011223344556677${digest}"),
            "only supported scheme is sha256",
        ),
        (
            &*format!("sha256$zz11223344556677${digest}"),
            "salt is not hex",
        ),
        (&*format!("sha256$001122${digest}"), "salt has 3 bytes"),
        ("sha256$0011223344556677$abcd", "digest has 2 bytes"),
        ("sha256$0011223344556677$abc", "digest is not hex"),
    ];
    for (text, expected) in cases {
        let err = text.parse::<TokenHash>().unwrap_err();
        assert!(
            matches!(&err, TokenConfigError::BadHash(why) if why.contains(expected)),
            "{text:?}: {err}"
        );
    }
    let token = NewToken::generate(Role::Admin, None).unwrap().token;
    let err = token.parse::<TokenHash>().unwrap_err();
    assert_eq!(err, TokenConfigError::PlainToken);
    assert!(
        !err.to_string().contains(&token),
        "the secret must not be echoed"
    );
}

#[test]
fn digest_comparison_checks_every_byte() {
    let a = [7u8; 32];
    assert!(constant_time_eq(&a, &a));
    for i in [0, 13, 31] {
        let mut b = a;
        b[i] ^= 0x80;
        assert!(!constant_time_eq(&a, &b), "differs at byte {i}");
    }
}

#[test]
fn env_list_parses_and_rejects_bad_entries() {
    let a = NewToken::generate(Role::Storefront, Some("web")).unwrap();
    let b = NewToken::generate(Role::Admin, Some("ops")).unwrap();
    let list = format!(" {} , ,{}", a.entry.env_entry(), b.entry.env_entry());
    let tokens = Tokens::parse_list(&list).unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        tokens.verify(&a.token).map(|e| e.name.as_str()),
        Some("web")
    );
    assert_eq!(tokens.verify(&b.token).map(|e| e.role), Some(Role::Admin));
    assert!(tokens.verify("xo_nope").is_none());
    assert!(Tokens::parse_list("").unwrap().is_empty());

    let hash = a.entry.hash.to_string();
    assert_eq!(
        Tokens::parse_list(&format!("web:storefront:{hash},broken")).unwrap_err(),
        TokenConfigError::BadEntry(2)
    );
    assert_eq!(
        Tokens::parse_list(&format!("web:owner:{hash}")).unwrap_err(),
        TokenConfigError::UnknownRole("owner".into())
    );
    assert_eq!(
        Tokens::parse_list(&format!("we b:admin:{hash}")).unwrap_err(),
        TokenConfigError::BadName("we b".into())
    );
    assert_eq!(
        Tokens::parse_list(&format!("web:admin:{hash},web:helpdesk:{hash}")).unwrap_err(),
        TokenConfigError::DuplicateName("web".into())
    );
    assert_eq!(
        Tokens::parse_list(&format!("web:admin:{}", a.token)).unwrap_err(),
        TokenConfigError::PlainToken
    );
    let long = "n".repeat(MAX_NAME_CHARS + 1);
    assert!(matches!(
        Tokens::parse_list(&format!("{long}:admin:{hash}")),
        Err(TokenConfigError::BadName(_))
    ));
}

#[test]
fn toml_entry_is_what_the_config_file_reads() {
    #[derive(Debug, Deserialize)]
    struct File {
        tokens: Vec<TokenEntry>,
    }
    let made = NewToken::generate(Role::Helpdesk, Some("desk")).unwrap();
    let file: File = toml::from_str(&made.entry.toml_entry()).unwrap();
    assert_eq!(file.tokens, vec![made.entry.clone()]);
    let bad = "[[tokens]]\nname = \"desk\"\nrole = \"helpdesk\"\nhash = \"sha256$00$00\"\n";
    let err = toml::from_str::<File>(bad).unwrap_err().to_string();
    assert!(err.contains("salt has 1 bytes"), "{err}");
    let instructions = made.instructions();
    assert!(instructions.contains(&made.token));
    assert!(instructions.contains(&made.entry.toml_entry()));
    assert!(instructions.contains(&made.entry.env_entry()));
}

#[test]
fn decisions_follow_the_table() {
    let (tokens, [shop, desk, admin]) = token_set();
    let deny = |who: &str, denial| Verdict::Deny {
        who: who.into(),
        denial,
    };
    let pass_as = |name: &str, role| {
        Verdict::Pass(Some(Caller {
            name: name.into(),
            role,
        }))
    };
    let reply = "/xiaoer.v1.AutoReply/Reply";
    let reload = "/xiaoer.v1.KnowledgeBase/Reload";
    let claim = "/xiaoer.v1.Handoffs/ClaimHandoff";
    assert_eq!(
        decide(&tokens, reply, Some(&bearer(&shop))),
        pass_as("shop", Role::Storefront)
    );
    assert_eq!(
        decide(&tokens, claim, Some(&bearer(&shop))),
        deny("shop", Denial::WrongRole(Role::Storefront))
    );
    assert_eq!(
        decide(&tokens, claim, Some(&bearer(&desk))),
        pass_as("desk", Role::Helpdesk)
    );
    assert_eq!(
        decide(&tokens, reload, Some(&bearer(&desk))),
        deny("desk", Denial::WrongRole(Role::Helpdesk))
    );
    // The admin token was made without a name: it got a generated one.
    assert!(matches!(
        decide(&tokens, reload, Some(&bearer(&admin))),
        Verdict::Pass(Some(Caller {
            role: Role::Admin,
            ..
        }))
    ));
    assert!(matches!(
        decide(&tokens, "/xiaoer.v1.AutoReply/Nope", Some(&bearer(&admin))),
        Verdict::Deny {
            denial: Denial::NoRule,
            ..
        }
    ));
    assert_eq!(
        decide(&tokens, reply, None),
        deny("anonymous", Denial::MissingToken)
    );
    for malformed in ["", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", &shop] {
        let value = http::HeaderValue::from_str(malformed).unwrap();
        assert_eq!(
            decide(&tokens, reply, Some(&value)),
            deny("anonymous", Denial::Malformed),
            "{malformed:?}"
        );
    }
    let not_ascii = http::HeaderValue::from_bytes("Bearer 令牌".as_bytes()).unwrap();
    assert_eq!(
        decide(&tokens, reply, Some(&not_ascii)),
        deny("anonymous", Denial::Malformed)
    );
    assert_eq!(
        decide(&tokens, reply, Some(&bearer("xo_guess"))),
        deny("anonymous", Denial::UnknownToken)
    );
    // The scheme is case-insensitive (RFC 7235).
    let lower = http::HeaderValue::from_str(&format!("bearer {shop}")).unwrap();
    assert_eq!(
        decide(&tokens, reply, Some(&lower)),
        pass_as("shop", Role::Storefront)
    );
    // Probes and contract tools need no token.
    assert_eq!(
        decide(&tokens, "/grpc.health.v1.Health/Check", None),
        Verdict::Pass(None)
    );
    assert_eq!(
        decide(
            &tokens,
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            None
        ),
        Verdict::Pass(None)
    );
    // Without tokens (loopback-only mode) everything passes.
    assert_eq!(
        decide(&Tokens::default(), reload, None),
        Verdict::Pass(None)
    );
}

#[test]
fn denials_map_to_the_right_codes() {
    let code = |d: Denial| Status::from(d.into_error("/x.Y/Z")).code();
    for d in [
        Denial::MissingToken,
        Denial::Malformed,
        Denial::UnknownToken,
    ] {
        assert_eq!(code(d), tonic::Code::Unauthenticated);
    }
    assert_eq!(
        code(Denial::WrongRole(Role::Helpdesk)),
        tonic::Code::PermissionDenied
    );
    assert_eq!(code(Denial::NoRule), tonic::Code::PermissionDenied);
}

#[test]
fn exposure_needs_tokens_off_loopback() {
    let (tokens, _) = token_set();
    let none = Tokens::default();
    for ok in ["127.0.0.1:50051", "127.0.0.2:1", "[::1]:50051"] {
        assert!(check_exposure(ok.parse().unwrap(), &none).is_ok(), "{ok}");
    }
    for exposed in ["0.0.0.0:50051", "192.168.1.4:50051", "[::]:50051"] {
        let addr = exposed.parse().unwrap();
        let err = check_exposure(addr, &none).unwrap_err().to_string();
        assert!(err.contains("xiaoer token new"), "{err}");
        assert!(check_exposure(addr, &tokens).is_ok());
    }
}
