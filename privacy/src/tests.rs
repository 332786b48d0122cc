//! End-to-end examples and properties of [`crate::mask`].

use super::*;
use proptest::prelude::*;

#[test]
fn issue_21_examples_are_masked() {
    for (text, gone) in [
        ("call me on +44 20 7946 0958", "7946"),
        ("我电话 010-12345678", "12345678"),
        ("身份证110105194912310021", "110105194912310021"),
        ("卡号 6222 0212 3456 7890 123", "6222 0212 3456 7890 123"),
        ("微信号 wxid_abc123456", "wxid_abc123456"),
        ("护照 E12345678", "E12345678"),
        ("I live at 221B Baker Street, London NW1 6XE", "Baker"),
        (
            "身份证11010519491231002X6666666666666",
            "11010519491231002X",
        ),
    ] {
        let masked = mask(text);
        assert!(!masked.contains(gone), "{text} -> {masked}");
        assert_eq!(mask(&masked), masked, "idempotent on {text}");
    }
}

#[test]
fn masked_forms() {
    assert_eq!(mask("我的电话13812345678"), "我的电话138****5678");
    assert_eq!(
        mask("手机 +86 139-1234-5678 谢谢"),
        "手机 +86 139****5678 谢谢"
    );
    assert_eq!(mask("call 186 1234 5678"), "call 186****5678");
    assert_eq!(
        mask("reach me at (415) 555-2671 pls"),
        "reach me at (***) ***-2671 pls"
    );
    assert_eq!(
        mask("call me on +44 20 7946 0958"),
        "call me on +** ** **** 0958"
    );
    assert_eq!(mask("我电话 010-12345678"), "我电话 ***-****5678");
    assert_eq!(
        mask("mail: jane.doe@example.co.uk"),
        "mail: j***@example.co.uk"
    );
    assert_eq!(mask("jane.doe@example.cdoe@example.co"), "j***@example.co");
    assert_eq!(mask("我的邮箱abc123@qq.com谢谢"), "我的邮箱a***@qq.com谢谢");
    assert_eq!(mask("身份证11010519491231002X"), "身份证110***********002X");
    assert_eq!(mask("身份证110105194912310021"), "身份证110***********0021");
    assert_eq!(
        mask("卡号 4111 1111 1111 1111 扣了两次"),
        "卡号 **** 1111 扣了两次"
    );
    assert_eq!(mask("卡号 6222 0212 3456 7890 123"), "卡号 **** 0123");
    assert_eq!(mask("card 4111-1111-1111-1111"), "card **** 1111");
    assert_eq!(mask("微信号 wxid_abc123456"), "微信号 w***_*******56");
    assert_eq!(mask("护照 E12345678"), "护照 E******78");
    assert_eq!(
        mask("寄到上海市浦东新区张江路123号5栋301室"),
        "寄到[地址已隐藏]"
    );
    assert_eq!(
        mask("ship to 221 Baker Street, Apt 4B London"),
        "ship to [address hidden]"
    );
    assert_eq!(
        mask("收件人张三,电话13812345678"),
        "收件人[姓名已隐藏],电话138****5678"
    );
    assert_eq!(
        mask("my name is Jane Doe and"),
        "my name is [name hidden] and"
    );
    assert_eq!(mask("电话１３８１２３４５６７８。"), "电话138****5678。");
}

#[test]
fn order_numbers_stay_readable() {
    for text in [
        "订单号：4111111111111111",
        "order #4111111111111111",
        "订单号 260101123456789012 还没到",
        "订单号 110105194912310021 还没到",
        "订单号：TB20261101889 到哪了",
        "快递单号 SF1234567890123 一直不动",
        "where is order #A10293? tracking number 1Z999AA10123456784",
        "SF1234567890123",
        "亲,啥时候发货?",
        "where's my refund??",
        "size 38 or 39?",
        "路上堵车了吗",
        "身高170cm 体重65kg 穿什么码",
        "2024-03-15 下的单, 3月12号发货",
        "¥1299.00, 优惠码 SAVE20",
        "营业时间 0900-1800",
    ] {
        assert_eq!(mask(text), text);
    }
    let known = ["1234567890123456789"];
    let text = "我的 1234567890123456789 怎么还没发";
    assert_eq!(mask_keeping(text, &known), text);
    // A personal keyword wins over a storefront order.
    assert_eq!(
        mask_keeping("卡号 1234567890123456789", &known),
        "卡号 **** 6789"
    );
}

#[test]
fn adjacent_values_are_all_masked() {
    assert_eq!(mask("13812345678 13912345678"), "138****5678 139****5678");
    assert_eq!(
        mask("card 4111 1111 1111 1111 12/26"),
        "card **** 1111 12/26"
    );
    assert_eq!(mask("no 12 4111111111111111"), "no 12 **** 1111");
    assert_eq!(
        mask("4111111111111111,4111111111111111"),
        "**** 1111,**** 1111"
    );
    assert_eq!(
        mask("11010519491231002X 11010519491231002X"),
        "110***********002X 110***********002X"
    );
    assert_eq!(
        mask("(415) 555-2671 (415) 555-2672"),
        "(***) ***-2671 (***) ***-2672"
    );
}

#[test]
fn handoff_entities_survive() {
    let masked = mask("订单号：TB20261101889 到哪了，电话13812345678");
    assert!(
        masked.contains("TB20261101889") && masked.contains("138****5678"),
        "{masked}"
    );
}

/// Personal values to splice into generated messages.
fn pii() -> impl Strategy<Value = String> {
    prop_oneof![
        (3u8..10, 0u64..1_000_000_000).prop_map(|(h, n)| format!("1{h}{n:09}")),
        Just("+44 20 7946 0958".to_string()),
        Just("010-12345678".to_string()),
        Just("4111 1111 1111 1111".to_string()),
        Just("11010519491231002X".to_string()),
        Just("jane.doe@example.com".to_string()),
        Just("张江路123号5栋301室".to_string()),
        Just("221B Baker Street, London NW1 6XE".to_string()),
        Just("9123 4567".to_string()),
        Just("(415) 555-2671".to_string()),
        Just("ken dot wu at gmail dot com".to_string()),
        Just("r.hall [at] uni.edu".to_string()),
        Just("Flat 7C, Block 2, Sunny Bay Court, Tsuen Wan, Kowloon".to_string()),
        Just("高雄市苓雅区自强路二段45巷6弄9号2楼".to_string()),
        Just("文昌镇柏林村七组".to_string()),
        Just("40 elm st apt 2 halifax ns b3h 1a1".to_string()),
        Just("\nCheers,\nAnn Lee".to_string()),
        Just("应该是欧阳明远，不是欧阳明园".to_string()),
        Just("9205 5000 1234 5678 9012 34".to_string()),
        "[0-9]{1,19}",
        "[0-9 *-]{1,12}",
    ]
}

fn glue() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_string()),
        Just("-".to_string()),
        Just("*".to_string()),
        Just("电话".to_string()),
        Just("订单号".to_string()),
        Just("卡号 ".to_string()),
        Just("收件人".to_string()),
        Just("#".to_string()),
        Just("+".to_string()),
        Just("my wife ".to_string()),
        Just("财务".to_string()),
        Just("passport ".to_string()),
        Just("deliver to Ann Lee, ".to_string()),
        "[a-zA-Z一-龥]{0,3}",
    ]
}

fn message() -> impl Strategy<Value = String> {
    prop::collection::vec((glue(), pii()), 1..5)
        .prop_map(|parts| parts.into_iter().map(|(g, p)| g + &p).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_is_idempotent(text in "\\PC{0,200}") {
        let once = mask(&text);
        prop_assert_eq!(mask(&once), once.clone());
    }

    #[test]
    fn idempotent_on_dense_personal_data(text in message()) {
        let once = mask(&text);
        prop_assert_eq!(mask(&once), once.clone(), "from {:?}", text);
    }

    #[test]
    fn found_values_never_survive_in_clear(text in message()) {
        let masked = mask(&text);
        for f in find(&text, &[]) {
            let value = &text[f.range.clone()];
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 8 && text.matches(&digits).count() == 1 {
                prop_assert!(!masked.contains(&digits), "{} kept {} ({:?})", masked, digits, f.kind);
            }
        }
    }

    #[test]
    fn no_mobile_number_survives(prefix in "[a-z一-龥 ]{0,10}", n in 0u64..1_000_000_000, head in 3u8..10) {
        let phone = format!("1{head}{n:09}");
        let masked = mask(&format!("{prefix}{phone}"));
        prop_assert!(!masked.contains(&phone), "{} kept {}", masked, phone);
    }

    #[test]
    fn known_orders_survive(order in "[0-9]{10,19}|[A-Z]{2}[0-9]{8,16}", text in message()) {
        let full = format!("{text} 我的 {order} 到哪了");
        let masked = mask_keeping(&full, &[&order]);
        prop_assert!(masked.contains(&order), "{} lost {}", masked, order);
        prop_assert_eq!(mask_keeping(&masked, &[&order]), masked.clone());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fuzz_target_invariants(text in message()) {
        prop_assert_eq!(crate::invariants::check(&text), Ok(()));
    }

    #[test]
    fn fuzz_target_invariants_on_noise(text in "[0-9 *+()Xx-]{0,60}") {
        prop_assert_eq!(crate::invariants::check(&text), Ok(()));
    }
}
