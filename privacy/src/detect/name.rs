//! Names the shopper gives after "收件人", "联系人", "我叫", "my name is" and
//! the like. Only right after such a keyword: a name has no shape of its own.
//!
//! Chinese: a common surname (single or compound) and one or two more
//! characters, cut before words that end a name ("张三电话…", "王伟先生"),
//! with a title ("王先生") kept inside the span. Latin: up to three words,
//! capitalised unless the first one was written in lower case, never a
//! function word ("my name is jane and …" → "jane").

use std::ops::Range;

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由赖萧陳張劉黃趙吳楊鄭謝許韓馮鄧蕭葉蘇呂盧鍾譚範賈韋鄒龔顧錢嚴湯溫齊喬龐顏聶魯關蘭蔣賴馬孫羅陸單";
const COMPOUND: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "司徒", "夏侯", "尉迟", "公孙",
    "长孙", "宇文", "澹台", "端木", "西门", "南宫", "独孤", "轩辕",
];
const TITLES: &[&str] = &[
    "先生", "女士", "小姐", "老师", "同学", "师傅", "阿姨", "太太",
];
/// Characters that end a Chinese name when they follow the surname's first
/// given-name character or start it.
const ENDS: &str =
    "的是在到寄送收发电手地住和或谢吗呢啊哦了吧要想帮请说给改换不没也都就还号联姓名您你我他她已";
const STOPWORDS: &[&str] = &[
    "and", "or", "but", "i", "im", "i'm", "my", "the", "a", "an", "to", "from", "for", "at", "in",
    "on", "please", "pls", "plz", "thanks", "thank", "thx", "you", "is", "was", "here", "order",
    "not", "no", "yes", "hi", "hello", "dear", "phone", "tel", "mobile", "address", "email",
    "with", "by", "of", "it", "this", "that", "can", "could", "will", "would", "and", "tracking",
    "number", "card", "id", "name", "ok", "okay", "so", "if", "when", "then",
];
const HONORIFICS: &[&str] = &["mr", "mrs", "ms", "miss", "dr", "mx"];

fn han(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c) || c == '·'
}

/// The name right at `at` (after a name keyword), not past `end`.
pub(crate) fn after_keyword(text: &str, at: usize, end: usize) -> Option<Range<usize>> {
    let rest = &text[at..end];
    let first = rest.chars().next()?;
    if han(first) {
        chinese(rest).map(|n| at..at + n)
    } else if first.is_ascii_alphabetic() {
        // A word glued to "@", "_", "*" or digits is an account or a masked
        // value, not a name.
        let glued =
            |n: usize| rest[n..].starts_with(|c: char| c.is_ascii_digit() || "@_*".contains(c));
        latin(rest)
            .filter(|&n| !glued(n) && n >= 2)
            .map(|n| at..at + n)
    } else {
        None
    }
}

/// The name after a weak introduction ("this is", "I'm", "我是", bare
/// "name"): a Chinese name, or Latin words that are all capitalised.
pub(crate) fn after_intro(text: &str, at: usize, end: usize) -> Option<Range<usize>> {
    let r = after_keyword(text, at, end)?;
    let v = &text[r.clone()];
    let capitalised = v
        .split(' ')
        .filter(|w| !HONORIFICS.contains(&w.trim_end_matches('.').to_lowercase().as_str()))
        .all(|w| w.starts_with(|c: char| c.is_uppercase() || han(c)));
    capitalised.then_some(r)
}

/// Verbs that often follow a name ("邓晓雯会去拿", "让王芳签收").
const FOLLOWS: &str = "会来去签取拿让替代负";

/// A Chinese name that stands as a word: it is followed by something that
/// is not a Chinese character, by a character that ends a name ("的",
/// "电"), by a title, or by the end; and it is not a common word that
/// happens to start with a surname ("周末", "马上").
fn strict_chinese(s: &str) -> Option<usize> {
    let n = chinese(s)?;
    let after = &s[n..];
    let bounded = !after.starts_with(han)
        || after.starts_with(|c: char| ENDS.contains(c) || FOLLOWS.contains(c))
        || TITLES.iter().any(|t| after.starts_with(t));
    let common = NOT_NAMES.iter().any(|w| s.starts_with(w));
    (bounded && !common).then_some(n)
}

/// The name after a relation or role word ("我爷爷", "财务", "老顾客",
/// "my neighbour", "my wife's name,"): a Chinese name that stands as a word,
/// or Latin words that are all capitalised.
pub(crate) fn after_cue(text: &str, at: usize, end: usize) -> Option<Range<usize>> {
    let rest = &text[at..end];
    if rest.starts_with(han) {
        return strict_chinese(rest).map(|n| at..at + n);
    }
    after_intro(text, at, end)
}

/// Corrections further on in a name keyword's window ("收货人写错了，应该是
/// 欧阳明轩，不是欧阳明宣", "名字打成了张伟，其实是张玮"): every Chinese name
/// that stands as a word right after "是", "成" or "为".
pub(crate) fn corrections(text: &str, from: usize, end: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let window = &text[from..end];
    for (i, c) in window.char_indices() {
        if !matches!(c, '是' | '成' | '为') {
            continue;
        }
        let mut at = from + i + c.len_utf8();
        if text[at..end].starts_with('了') {
            at += '了'.len_utf8();
        }
        if let Some(n) = strict_chinese(&text[at..end]) {
            out.push(at..at + n);
        }
    }
    out
}

/// Closing words of a letter ("Cheers,", "Kind regards", "谢谢").
const VALEDICTIONS: &[&str] = &[
    "cheers",
    "regards",
    "kind regards",
    "best regards",
    "warm regards",
    "best",
    "best wishes",
    "thanks",
    "thank you",
    "many thanks",
    "thanks again",
    "sincerely",
    "yours sincerely",
    "yours truly",
    "yours",
    "love",
    "take care",
    "谢谢",
    "多谢",
    "此致",
    "祝好",
];

/// Names signing a message off: the last line, holding nothing but a name
/// (Chinese, Latin or both, a title allowed), after a dash ("—Jane Roe") or
/// after a line of closing words ("Cheers,\nJane Roe").
pub(crate) fn sign_offs(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let body = text.trim_end();
    let Some(nl) = body.rfind('\n') else {
        return out;
    };
    let last_start = nl + 1;
    let line = &body[last_start..];
    let stripped = line.trim_start_matches([' ', '-', '~']);
    let dashed = stripped.len() < line.trim_start().len();
    let prev = body[..nl].trim_end();
    let prev_line = prev[prev.rfind('\n').map_or(0, |i| i + 1)..]
        .trim()
        .trim_end_matches([',', '!', '.', '，', '！', '。'])
        .to_lowercase();
    if !dashed && !VALEDICTIONS.contains(&prev_line.as_str()) {
        return out;
    }
    let mut at = body.len() - stripped.len();
    let mut found = Vec::new();
    while at < body.len() {
        let rest = &body[at..];
        let n = if rest.starts_with(han) {
            match chinese(rest) {
                Some(n) if !rest[n..].starts_with(han) => n,
                _ => return out,
            }
        } else {
            match latin(rest) {
                Some(n)
                    if rest[..n]
                        .split(' ')
                        .all(|w| w.starts_with(char::is_uppercase)) =>
                {
                    n
                }
                _ => return out,
            }
        };
        found.push(at..at + n);
        at += n;
        let spaces = body[at..].len() - body[at..].trim_start_matches(' ').len();
        if spaces == 0 && at < body.len() {
            return out;
        }
        at += spaces;
    }
    out.extend(found);
    out
}

/// Words that start with a surname character but are not names.
const NOT_NAMES: &[&str] = &[
    "黄色",
    "白色",
    "金色",
    "高兴",
    "方便",
    "明天",
    "时间",
    "安全",
    "常用",
    "高端",
    "陈列",
    "周末",
    "周一",
    "周二",
    "周三",
    "周四",
    "周五",
    "周六",
    "周日",
    "万一",
    "文件",
    "江苏",
    "金额",
    "包装",
    "朱红",
    "何时",
    "马上",
    "毛重",
    "宁可",
    "全部",
    "全新",
    "正常",
    "温度",
    "和我",
    "谢谢",
    "关于",
    "信息",
    "包裹",
    "付款",
    "付钱",
    "安排",
    "方式",
    "时候",
    "明白",
    "全名",
    "简单",
    "关系",
    "单位",
    "司机",
    "商品",
    "余额",
    "管理",
    "平时",
    "应该",
    "能不能",
    "高铁",
];

/// Chinese names standing alone right next to another personal value
/// ("…501室 陈静 15800001111", "350203…6196 黄晓婷"): a surname and one or
/// two characters, bounded by anything but Chinese characters, with at most
/// a space, comma or colon between it and the value.
pub(crate) fn beside_values(text: &str, values: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = text;
    while i < b.len() {
        let Some(c) = b[i..].chars().next() else {
            break;
        };
        if !han(c) {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        while let Some(c) = b[i..].chars().next().filter(|&c| han(c)) {
            i += c.len_utf8();
        }
        let mut start = start;
        let token = &b[start..i];
        let chars = token.chars().count();
        if !(2..=4).contains(&chars)
            || NOT_NAMES.contains(&token)
            || chinese(token) != Some(token.len())
        {
            // "财务钱晓燕", "老顾客陆思远": a role or relation word, then the name.
            match cued_tail(token) {
                Some(n) => start = i - n,
                None => continue,
            }
        }
        let sep = |g: &str| g.len() <= 3 && g.chars().all(|c| " ,、:;，".contains(c));
        let beside = values.iter().any(|v| {
            (v.end <= start && sep(&b[v.end..start]))
                || (v.start >= i && (sep(&b[i..v.start]) || keyword_gap(&b[i..v.start])))
        });
        if beside {
            out.push(start..i);
        }
    }
    out.extend(latin_beside_values(text, values));
    out
}

/// Role and relation words a name often follows in Chinese ("财务钱晓燕",
/// "我爷爷罗长富").
const CUES_ZH: &[&str] = &[
    "妈妈", "爸爸", "我妈", "我爸", "老婆", "老公", "爷爷", "奶奶", "外婆", "外公", "姥姥", "姥爷",
    "姐姐", "哥哥", "弟弟", "妹妹", "儿子", "女儿", "舅舅", "叔叔", "同事", "朋友", "室友", "邻居",
    "老板", "财务", "会计", "顾客", "客户", "家人",
];

/// Byte length of a name ending `token` right after a role or relation word.
fn cued_tail(token: &str) -> Option<usize> {
    CUES_ZH.iter().find_map(|cue| {
        let at = token.rfind(cue)? + cue.len();
        let rest = &token[at..];
        (!rest.is_empty() && strict_chinese(rest) == Some(rest.len())).then_some(rest.len())
    })
}

/// A gap between a name and the value after it that holds one keyword
/// naming that value ("刘秀英，电话 135…", "李雷 手机:139…", "Ann Lee, tel ").
fn keyword_gap(gap: &str) -> bool {
    const WORDS: &[&str] = &[
        "电话号码",
        "电话",
        "手机号码",
        "手机号",
        "手机",
        "联系电话",
        "身份证号",
        "身份证",
        "tel",
        "phone",
        "mobile",
        "cell",
    ];
    let seps: &[char] = &[' ', ',', '、', ':', ';', '，'];
    let g = gap.trim_start_matches(seps);
    let lower = g.to_lowercase();
    gap.len() <= 24
        && WORDS
            .iter()
            .any(|w| lower.starts_with(w) && lower[w.len()..].trim_start_matches(seps).is_empty())
}

/// Latin names right before another personal value, after a word that
/// introduces a person ("deliver to Ann Lee, 12 Main St", "call Ann Lee on
/// +44 …", "to Li Wei at Room 5"): two or three capitalised words, none a
/// place, street or building word.
fn latin_beside_values(text: &str, values: &[Range<usize>]) -> Vec<Range<usize>> {
    const INTRO: &[&str] = &[
        "to", "call", "text", "ring", "contact", "for", "with", "attn", "c/o",
    ];
    const JOINS: &[&str] = &[", ", " at ", " on ", " - ", ": ", " "];
    const NOT_NAME: &[&str] = &[
        "Hong", "Kong", "New", "York", "City", "District", "Street", "Road", "Tower", "Building",
        "Room", "Flat", "Unit", "Apt", "Suite", "Block", "Floor", "Level", "The", "Mr", "Ms",
    ];
    let mut out = Vec::new();
    for v in values {
        let before = &text[..v.start];
        let Some(join) = JOINS.iter().find(|j| before.ends_with(*j)) else {
            continue;
        };
        let head = &before[..before.len() - join.len()];
        // Up to three words back from the value.
        let words: Vec<&str> = head.rsplitn(5, ' ').take(4).collect();
        for n in (2..=3).rev() {
            if words.len() <= n {
                continue;
            }
            let name = &words[..n];
            let intro = words[n].trim_start_matches(|c: char| !c.is_ascii_alphabetic());
            let ok = name.iter().all(|w| {
                w.len() >= 2
                    && w.starts_with(|c: char| c.is_ascii_uppercase())
                    && w.chars()
                        .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '\'')
                    && !NOT_NAME.contains(w)
            }) && INTRO.contains(&intro.to_lowercase().as_str());
            if ok {
                let len: usize = name.iter().map(|w| w.len()).sum::<usize>() + n - 1;
                out.push(head.len() - len..head.len());
                break;
            }
        }
    }
    out
}

/// Byte length of a Chinese name at the start of `s`.
fn chinese(s: &str) -> Option<usize> {
    // "老金", "小王", "阿陈": a familiar prefix and a surname.
    let mut it = s.chars();
    if let (Some(p @ ('老' | '小' | '阿')), Some(n)) = (it.next(), it.next()) {
        if SURNAMES.contains(n) && !s[p.len_utf8() + n.len_utf8()..].starts_with(han) {
            return Some(p.len_utf8() + n.len_utf8());
        }
    }
    let surname = COMPOUND
        .iter()
        .find(|c| s.starts_with(*c))
        .map(|c| c.len())
        .or_else(|| {
            s.chars()
                .next()
                .filter(|c| SURNAMES.contains(*c))
                .map(char::len_utf8)
        })?;
    let rest = &s[surname..];
    if let Some(t) = TITLES.iter().find(|t| rest.starts_with(*t)) {
        return Some(surname + t.len());
    }
    let mut given = 0;
    for c in rest.chars().take(2) {
        let here = &rest[given..];
        if !han(c) || ENDS.contains(c) || TITLES.iter().any(|t| here.starts_with(t)) {
            break;
        }
        given += c.len_utf8();
    }
    if given == 0 {
        return None;
    }
    let after = &rest[given..];
    let title = TITLES
        .iter()
        .find(|t| after.starts_with(*t))
        .map_or(0, |t| t.len());
    Some(surname + given + title)
}

/// Byte length of a Latin-script name at the start of `s`.
fn latin(s: &str) -> Option<usize> {
    let mut end = 0;
    let mut words = 0;
    let mut lower_mode = false;
    let mut at = 0;
    while words < 3 {
        let rest = &s[at..];
        let len = rest
            .find(|c: char| !(c.is_alphabetic() || c == '\'' || c == '-' || c == '.'))
            .unwrap_or(rest.len());
        let word = rest[..len].trim_end_matches(['.', '\'', '-']);
        if word.is_empty() {
            break;
        }
        let lower = word.to_lowercase();
        if HONORIFICS.contains(&lower.as_str()) {
            // "Mr. Smith": the title goes with the name that follows.
        } else {
            if STOPWORDS.contains(&lower.as_str()) {
                break;
            }
            let capital = word.starts_with(|c: char| c.is_uppercase());
            if words == 0 && !capital {
                lower_mode = true;
            } else if !capital && !lower_mode {
                break;
            }
            words += 1;
        }
        end = at + word.len();
        let full_stop = rest[..len].ends_with('.') && !HONORIFICS.contains(&lower.as_str());
        at += len;
        if full_stop || !s[at..].starts_with(' ') || s[at + 1..].starts_with(' ') {
            break;
        }
        at += 1;
    }
    (words > 0).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beside_other_values() {
        let t = "501室 陈静 15800001111 黄色 13800001111";
        let phone = t.find("158").unwrap();
        let phone2 = t.find("138").unwrap();
        let found: Vec<&str> = beside_values(t, &[phone..phone + 11, phone2..phone2 + 11])
            .into_iter()
            .map(|r| &t[r])
            .collect();
        assert_eq!(found, vec!["陈静"]);
    }

    #[test]
    fn names_beside_values_after_cues_and_keywords() {
        let t = "寄给同事周海峰 13900002222";
        let v = t.find("139").unwrap();
        let found: Vec<&str> = beside_values(t, std::slice::from_ref(&(v..v + 11)))
            .into_iter()
            .map(|r| &t[r])
            .collect();
        assert_eq!(found, vec!["周海峰"]);
        let t = "地址写好了，杜美玲，手机 13900002222";
        let v = t.find("139").unwrap();
        let found: Vec<&str> = beside_values(t, std::slice::from_ref(&(v..v + 11)))
            .into_iter()
            .map(|r| &t[r])
            .collect();
        assert_eq!(found, vec!["杜美玲"]);
        // A keyword of another kind in the gap does not count.
        let t = "杜美玲，订单 13900002222";
        let v = t.find("139").unwrap();
        assert!(beside_values(t, std::slice::from_ref(&(v..v + 11))).is_empty());
    }

    #[test]
    fn latin_names_before_values() {
        for (t, value, want) in [
            (
                "please ship to Hannah Cole, 14 Elm Road",
                "14 Elm Road",
                Some("Hannah Cole"),
            ),
            (
                "call Rahul Mehta on +91 98765 43210",
                "+91 98765 43210",
                Some("Rahul Mehta"),
            ),
            ("Sent to Hong Kong, 14 Elm Road", "14 Elm Road", None),
            ("The Big Shop, 14 Elm Road", "14 Elm Road", None),
        ] {
            let v = t.find(value).unwrap();
            let found: Vec<&str> =
                latin_beside_values(t, std::slice::from_ref(&(v..v + value.len())))
                    .into_iter()
                    .map(|r| &t[r])
                    .collect();
            assert_eq!(found, want.into_iter().collect::<Vec<_>>(), "{t}");
        }
    }

    #[test]
    fn names_after_cues_stand_as_words() {
        fn cue(s: &str) -> Option<&str> {
            after_cue(s, 0, s.len()).map(|r| &s[r])
        }
        assert_eq!(cue("孙丽华 会去拿"), Some("孙丽华"));
        assert_eq!(cue("魏国强的快递"), Some("魏国强"));
        assert_eq!(cue("周末才在家"), None);
        assert_eq!(cue("明天来取"), None);
        assert_eq!(cue("信息:"), None);
        assert_eq!(cue("Grace Ho will sign"), Some("Grace Ho"));
        assert_eq!(cue("is picking it up"), None);
    }

    #[test]
    fn corrected_names() {
        let t = "收件人打错了，应该是上官婉清，不是上官婉晴。";
        let found: Vec<&str> = corrections(t, 0, t.len())
            .into_iter()
            .map(|r| &t[r])
            .collect();
        assert_eq!(found, vec!["上官婉清", "上官婉晴"]);
        let t = "名字写成了郑小雨";
        let found: Vec<&str> = corrections(t, 0, t.len())
            .into_iter()
            .map(|r| &t[r])
            .collect();
        assert_eq!(found, vec!["郑小雨"]);
        let t = "姓名是不是要写全";
        assert!(corrections(t, 0, t.len()).is_empty());
    }

    #[test]
    fn sign_offs_at_the_end() {
        let names = |t: &str| -> Vec<String> {
            sign_offs(t).into_iter().map(|r| t[r].to_string()).collect()
        };
        assert_eq!(
            names("box was wet.\nRegards,\nMs. Olga Petrova"),
            vec!["Ms. Olga Petrova"]
        );
        assert_eq!(names("thanks!\n- Ravi Shah\n"), vec!["Ravi Shah"]);
        assert_eq!(
            names("好的\n谢谢\n郭佳怡 Jenny Guo"),
            vec!["郭佳怡", "Jenny Guo"]
        );
        assert!(names("Regards,\nthe delivery was late").is_empty());
        assert!(names("my order\nSize M please").is_empty());
        assert!(names("Cheers,\n[name hidden]").is_empty());
    }

    fn name(s: &str) -> Option<&str> {
        after_keyword(s, 0, s.len()).map(|r| &s[r])
    }

    #[test]
    fn chinese_names() {
        assert_eq!(name("张三电话13812345678"), Some("张三"));
        assert_eq!(name("王小明,电话"), Some("王小明"));
        assert_eq!(name("欧阳娜娜 收"), Some("欧阳娜娜"));
        assert_eq!(name("王先生"), Some("王先生"));
        assert_eq!(name("李伟先生"), Some("李伟先生"));
        assert_eq!(name("写错了"), None);
        assert_eq!(name("老金 158"), Some("老金"));
        assert_eq!(name("[姓名已隐藏]"), None);
    }

    #[test]
    fn latin_names() {
        assert_eq!(name("Jane Doe and I need"), Some("Jane Doe"));
        assert_eq!(name("jane doe and"), Some("jane doe"));
        assert_eq!(name("Mr. John Smith, please"), Some("Mr. John Smith"));
        assert_eq!(name("John. Where is"), Some("John"));
        assert_eq!(name("[name hidden]"), None);
        assert_eq!(name("jane.doe@example.com"), None);
        assert_eq!(name("j***@example.com"), None);
    }
}
