//! Chinese street addresses: province, city, district, town, road and house
//! number, estate, building, unit and room, with or without the upper
//! levels ("上海市浦东新区张江路123号5栋301室", "朝阳区建国路88号",
//! "阳光花园3栋2单元501").
//!
//! Components are found one by one and joined while they follow each other
//! (a space, comma or "、" may sit between). A joined run is masked whole
//! when it holds something at street level — a road with a number, or a
//! building/unit/room number — so "发货地上海" or "3月12号" stay readable.
//! Place names may not contain the function words of a sentence ("请寄到",
//! "我住在"), which keeps the span from swallowing the words before it.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// Characters that never sit inside a place name in shoppers' messages.
const STOP: &str = "我你您他她它们的了是在到寄送收货请帮把给与及或也都就还要想能可以吗呢吧啊呀哦嗯这那哪个有没不很太址员递话码联系姓名谢麻烦下单改成换为住电手机哈呵啦么什怎样多少几时候等已经刚才";

static COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!(r"[\p{{Han}}&&[^{STOP}\s]]");
    let num = r"[0-9]+(?:[-之][0-9]+)?";
    let unit_num = r"[A-Za-z]?[0-9]{1,5}[A-Za-z]?";
    let cn_num = r"[一二三四五六七八九十]{1,3}";
    let province = r"(?:北京|天津|上海|重庆)市?|(?:河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾)省?|内蒙古(?:自治区)?|广西(?:壮族自治区)?|西藏(?:自治区)?|宁夏(?:回族自治区)?|新疆(?:维吾尔自治区)?|香港(?:特别行政区)?|澳门(?:特别行政区)?";
    let place_name = format!(r"[\p{{Han}}A-Za-z&&[^{STOP}]]");
    let pattern = format!(
        r"(?x)
        (?P<road>{name}{{1,6}}?(?:大道|大街|路|街|巷|弄|胡同|里|道)(?:[东西南北中]段|(?:{num}|{cn_num})段)?(?:\s*{num}\s*(?:巷|弄))*\s*{num}\s*(?:号|號|弄)(?:院)?)
      | (?P<unit>(?:{unit_num}|{cn_num})\s*(?:号楼|號樓|栋|棟|幢|座|单元|單元|室|房间|房|户|號院|号院)|[A-Za-z]座)
      | (?P<floor>(?:{unit_num}|{cn_num})\s*(?:层|層|楼|樓|组|組|队|隊)(?P<floor_room>\s*{unit_num}(?:室|房|号|號)?)?)
      | (?P<number>{num}\s*(?:号|號))
      | (?P<province>{province})
      | (?P<admin>{name}{{1,6}}?(?:自治州|地区|新区|开发区|街道|社区|园区|市|州|盟|区|區|县|縣|旗|镇|鎮|乡|鄉|村|邨))
      | (?P<group>{name}{{1,3}}?(?:组|組))
      | (?P<place>{place_name}{{1,8}}?(?:小区|花园|花園|大厦|大廈|公寓|家园|苑|园|園|庭|广场|廣場|中心|大楼|大樓|城|湾|灣|府|公馆|宿舍|校区|写字楼|新村|大院|里|閣|阁|屋邨))
      | (?P<road_only>{name}{{1,6}}?(?:大道|大街|路|街|巷|胡同))
      | (?P<room>{unit_num})"
    );
    Regex::new(&pattern).expect("address component regex")
});

/// Chinese street addresses in the folded text.
pub(crate) fn find(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut run: Option<(Range<usize>, bool, usize)> = None; // range, street level, components
    let flush = |run: &mut Option<(Range<usize>, bool, usize)>, out: &mut Vec<Range<usize>>| {
        if let Some((r, true, _)) = run.take() {
            out.push(r);
        }
    };
    for caps in COMPONENT.captures_iter(text) {
        let Some(m) = caps.get(0) else { continue };
        // Never from the middle of a number, nor right after a masked value.
        let digit = |c: char| c.is_ascii_digit();
        if (m.as_str().starts_with(digit) && text[..m.start()].ends_with(digit))
            || (m.as_str().ends_with(digit) && text[m.end()..].starts_with(digit))
            || super::after_mask(text, m.start())
        {
            flush(&mut run, &mut out);
            continue;
        }
        let bare_room = caps.name("room").is_some();
        let building = caps.name("place").is_some() || caps.name("unit").is_some();
        let upper = caps.name("admin").is_some() || caps.name("province").is_some();
        let joined = run.as_ref().is_some_and(|(r, level, _)| {
            let gap = &text[r.end..m.start()];
            // Addresses go from large to small: a district after the house
            // number starts something else ("…27号 农村的").
            if *level && upper {
                return false;
            }
            // An address already at street level goes on across a short
            // name with function characters in it ("33号美的海岸花园").
            gap_joins(gap)
                || (*level
                    && building
                    && gap.chars().count() <= 2
                    && gap.chars().all(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c)))
        });
        // A house number counts once it follows another part ("…村三组27号");
        // alone it may be a date ("12号").
        // A village's group ("李庄村三组", "东山村下湾组") is the last part of a
        // rural address: street level once it follows the village.
        let group = caps.name("group").is_some()
            || (caps.name("floor").is_some() && m.as_str().ends_with(['组', '組', '队', '隊']));
        let street = caps.name("road").is_some()
            || caps.name("unit").is_some()
            || caps.name("floor_room").is_some()
            || ((caps.name("number").is_some() || group) && joined);
        if bare_room {
            // A bare number only ends a run that is already an address
            // ("5栋1201"); alone it is any number.
            if let Some((r, true, _)) = run.as_mut().filter(|_| joined) {
                if text[r.end..m.start()].trim().is_empty() && m.len() >= 3 {
                    r.end = m.end();
                }
            }
            continue;
        }
        match run.as_mut() {
            Some((r, level, n)) if joined => {
                r.end = m.end();
                *level |= street;
                *n += 1;
            }
            _ => {
                flush(&mut run, &mut out);
                run = Some((m.range(), street, 1));
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Components join across nothing, one space, or one comma/"、".
fn gap_joins(gap: &str) -> bool {
    let g = gap.trim_matches(' ');
    gap.len() <= 2 && (g.is_empty() || g == "," || g == "、")
        || gap.len() <= 4 && matches!(g, "、" | "," | "，")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &str) -> Vec<&str> {
        find(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn full_and_partial_addresses() {
        for (text, want) in [
            (
                "寄到上海市浦东新区张江路123号5栋301室",
                "上海市浦东新区张江路123号5栋301室",
            ),
            ("请帮我寄到北京市朝阳区建国路88号", "北京市朝阳区建国路88号"),
            (
                "我住在朝阳区建国路88号SOHO现代城5号楼1201,谢谢",
                "朝阳区建国路88号SOHO现代城5号楼1201",
            ),
            ("地址:阳光花园3栋2单元501", "阳光花园3栋2单元501"),
            (
                "广东省 深圳市 南山区 科技园路 1号",
                "广东省 深圳市 南山区 科技园路 1号",
            ),
            (
                "寄到浦东新区张江路123号5@example.co.栋",
                "浦东新区张江路123号",
            ),
            ("张江路123弄5号", "张江路123弄5号"),
            (
                "地址河北省保定市清苑区东闾乡北王力村三组27号 农村的",
                "河北省保定市清苑区东闾乡北王力村三组27号",
            ),
            ("台北市信義區信義路五段7號 收", "台北市信義區信義路五段7號"),
            (
                "高雄市苓雅区自强路二段45巷6弄9号2楼",
                "高雄市苓雅区自强路二段45巷6弄9号2楼",
            ),
            ("台中市西屯區福科路77巷3號", "台中市西屯區福科路77巷3號"),
            (
                "四川省绵阳市梓潼县文昌镇柏林村七组",
                "四川省绵阳市梓潼县文昌镇柏林村七组",
            ),
            (
                "寄到安徽省六安市霍山县诸佛庵镇青枫岭村12组",
                "安徽省六安市霍山县诸佛庵镇青枫岭村12组",
            ),
            (
                "贵州省遵义市湄潭县兴隆镇龙凤村田坝组6号 谢谢",
                "贵州省遵义市湄潭县兴隆镇龙凤村田坝组6号",
            ),
            (
                "顺德区大良街道南国东路33号美的海岸花园12座1802",
                "顺德区大良街道南国东路33号美的海岸花园12座1802",
            ),
        ] {
            assert_eq!(addresses(text), vec![want], "{text}");
        }
    }

    #[test]
    fn dates_and_places_alone_stay() {
        for text in [
            "3月12号发货",
            "发货地上海",
            "路上堵车了吗",
            "我在3楼",
            "新疆能发吗",
            "买了3组",
            "我们小组明天到",
            "size 38",
        ] {
            assert_eq!(addresses(text), Vec::<&str>::new(), "{text}");
        }
    }
}
