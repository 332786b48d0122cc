//! Names the shopper gives after "收件人", "联系人", "我叫", "my name is" and
//! the like. Only right after such a keyword: a name has no shape of its own.
//!
//! Chinese: a common surname (single or compound) and one or two more
//! characters, cut before words that end a name ("张三电话…", "王伟先生"),
//! with a title ("王先生") kept inside the span. Latin: up to three words,
//! capitalised unless the first one was written in lower case, never a
//! function word ("my name is jane and …" → "jane").

use std::ops::Range;

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由";
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

/// Words that start with a surname character but are not names.
const NOT_NAMES: &[&str] = &[
    "黄色", "白色", "金色", "高兴", "方便", "明天", "时间", "安全", "常用", "高端", "陈列", "周末",
    "周一", "周二", "周三", "周四", "周五", "周六", "周日", "万一", "文件", "江苏", "金额", "包装",
    "朱红", "何时", "马上", "毛重", "宁可", "全部", "全新", "正常", "温度", "和我", "谢谢", "关于",
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
        let token = &b[start..i];
        let chars = token.chars().count();
        if !(2..=4).contains(&chars)
            || NOT_NAMES.contains(&token)
            || chinese(token) != Some(token.len())
        {
            continue;
        }
        let sep = |g: &str| g.len() <= 3 && g.chars().all(|c| " ,、:;，".contains(c));
        let beside = values.iter().any(|v| {
            (v.end <= start && sep(&b[v.end..start])) || (v.start >= i && sep(&b[i..v.start]))
        });
        if beside {
            out.push(start..i);
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
