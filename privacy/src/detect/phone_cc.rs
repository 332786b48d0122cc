//! Country calling codes and the national significant number lengths each
//! allows, as libphonenumber's metadata (9.0.33, through the `phonenumber`
//! crate) gives them: the union of every number type's possible lengths over
//! all regions sharing the code. A test (tests/phone_metadata.rs) rebuilds it
//! from the crate and fails when the two drift apart.
//!
//! Used only to know where an international number *ends* ("+44 20 7946 0958
//! 2 pcs" stops before the 2); a number outside these lengths is still masked.

/// `(code, shortest, longest)` national significant number, sorted by code.
pub(crate) const COUNTRY_CODES: &[(u16, u8, u8)] = &[
    (1, 7, 10),   // KN TC PR VI VC KY US AG BB JM DM MP GD CA DO TT SX GU BS MS AS BM AI LC VG
    (7, 10, 14),  // KZ RU
    (20, 8, 10),  // EG
    (27, 5, 10),  // ZA
    (30, 10, 12), // GR
    (31, 5, 11),  // NL
    (32, 8, 9),   // BE
    (33, 9, 9),   // FR
    (34, 9, 9),   // ES
    (36, 8, 9),   // HU
    (39, 6, 12),  // VA IT
    (40, 6, 9),   // RO
    (41, 9, 12),  // CH
    (43, 4, 13),  // AT
    (44, 7, 10),  // IM GG GB JE
    (45, 8, 8),   // DK
    (46, 6, 12),  // SE
    (47, 5, 8),   // SJ NO
    (48, 6, 10),  // PL
    (49, 4, 15),  // DE
    (51, 8, 9),   // PE
    (52, 10, 10), // MX
    (53, 6, 10),  // CU
    (54, 10, 11), // AR
    (55, 8, 11),  // BR
    (56, 9, 11),  // CL
    (57, 8, 11),  // CO
    (58, 10, 10), // VE
    (60, 8, 10),  // MY
    (61, 5, 12),  // AU CC CX
    (62, 7, 17),  // ID
    (63, 6, 13),  // PH
    (64, 5, 10),  // NZ
    (65, 8, 11),  // SG
    (66, 8, 13),  // TH
    (81, 8, 17),  // JP
    (82, 5, 14),  // KR
    (84, 7, 10),  // VN
    (86, 7, 12),  // CN
    (90, 7, 13),  // TR
    (91, 8, 13),  // IN
    (92, 8, 12),  // PK
    (93, 9, 9),   // AF
    (94, 9, 9),   // LK
    (95, 6, 10),  // MM
    (98, 4, 10),  // IR
    (211, 9, 9),  // SS
    (212, 9, 9),  // EH MA
    (213, 8, 9),  // DZ
    (216, 8, 8),  // TN
    (218, 9, 9),  // LY
    (220, 7, 7),  // GM
    (221, 9, 9),  // SN
    (222, 8, 8),  // MR
    (223, 8, 8),  // ML
    (224, 8, 9),  // GN
    (225, 10, 10), // CI
    (226, 8, 8),  // BF
    (227, 8, 8),  // NE
    (228, 8, 8),  // TG
    (229, 8, 10), // BJ
    (230, 7, 10), // MU
    (231, 7, 9),  // LR
    (232, 8, 8),  // SL
    (233, 8, 9),  // GH
    (234, 10, 14), // NG
    (235, 8, 8),  // TD
    (236, 8, 8),  // CF
    (237, 8, 9),  // CM
    (238, 7, 7),  // CV
    (239, 7, 7),  // ST
    (240, 9, 9),  // GQ
    (241, 7, 8),  // GA
    (242, 9, 9),  // CG
    (243, 7, 10), // CD
    (244, 9, 9),  // AO
    (245, 7, 9),  // GW
    (246, 7, 7),  // IO
    (247, 5, 6),  // AC
    (248, 7, 7),  // SC
    (249, 9, 9),  // SD
    (250, 8, 9),  // RW
    (251, 9, 9),  // ET
    (252, 6, 9),  // SO
    (253, 8, 8),  // DJ
    (254, 7, 10), // KE
    (255, 9, 9),  // TZ
    (256, 9, 9),  // UG
    (257, 8, 8),  // BI
    (258, 8, 9),  // MZ
    (260, 9, 9),  // ZM
    (261, 9, 9),  // MG
    (262, 9, 9),  // RE YT
    (263, 5, 10), // ZW
    (264, 8, 9),  // NA
    (265, 7, 9),  // MW
    (266, 8, 8),  // LS
    (267, 7, 10), // BW
    (268, 8, 9),  // SZ
    (269, 7, 7),  // KM
    (290, 4, 5),  // TA SH
    (291, 7, 7),  // ER
    (297, 7, 7),  // AW
    (298, 6, 6),  // FO
    (299, 6, 6),  // GL
    (350, 8, 8),  // GI
    (351, 9, 9),  // PT
    (352, 4, 11), // LU
    (353, 7, 10), // IE
    (354, 7, 9),  // IS
    (355, 6, 9),  // AL
    (356, 8, 8),  // MT
    (357, 8, 8),  // CY
    (358, 5, 12), // FI AX
    (359, 6, 12), // BG
    (370, 8, 8),  // LT
    (371, 8, 8),  // LV
    (372, 7, 10), // EE
    (373, 8, 8),  // MD
    (374, 8, 8),  // AM
    (375, 6, 11), // BY
    (376, 6, 9),  // AD
    (377, 8, 9),  // MC
    (378, 8, 10), // SM
    (380, 9, 10), // UA
    (381, 6, 12), // RS
    (382, 8, 9),  // ME
    (383, 8, 12), // XK
    (385, 7, 9),  // HR
    (386, 5, 8),  // SI
    (387, 8, 9),  // BA
    (389, 8, 8),  // MK
    (420, 9, 12), // CZ
    (421, 6, 9),  // SK
    (423, 7, 9),  // LI
    (500, 5, 5),  // FK
    (501, 7, 11), // BZ
    (502, 8, 11), // GT
    (503, 7, 11), // SV
    (504, 8, 11), // HN
    (505, 8, 8),  // NI
    (506, 8, 10), // CR
    (507, 7, 11), // PA
    (508, 6, 9),  // PM
    (509, 8, 8),  // HT
    (590, 9, 9),  // GP BL MF
    (591, 8, 9),  // BO
    (592, 7, 7),  // GY
    (593, 8, 11), // EC
    (594, 9, 9),  // GF
    (595, 6, 11), // PY
    (596, 9, 9),  // MQ
    (597, 6, 7),  // SR
    (598, 4, 13), // UY
    (599, 7, 8),  // CW BQ
    (670, 7, 8),  // TL
    (672, 6, 6),  // NF
    (673, 7, 7),  // BN
    (674, 7, 7),  // NR
    (675, 7, 8),  // PG
    (676, 5, 7),  // TO
    (677, 5, 7),  // SB
    (678, 5, 7),  // VU
    (679, 7, 11), // FJ
    (680, 7, 7),  // PW
    (681, 6, 9),  // WF
    (682, 5, 5),  // CK
    (683, 4, 7),  // NU
    (685, 5, 10), // WS
    (686, 5, 8),  // KI
    (687, 6, 6),  // NC
    (688, 5, 7),  // TV
    (689, 6, 9),  // PF
    (690, 4, 7),  // TK
    (691, 7, 7),  // FM
    (692, 7, 7),  // MH
    (850, 8, 10), // KP
    (852, 5, 11), // HK
    (853, 7, 8),  // MO
    (855, 8, 10), // KH
    (856, 8, 10), // LA
    (880, 6, 10), // BD
    (886, 7, 11), // TW
    (960, 7, 10), // MV
    (961, 7, 8),  // LB
    (962, 8, 9),  // JO
    (963, 8, 9),  // SY
    (964, 8, 10), // IQ
    (965, 7, 8),  // KW
    (966, 9, 10), // SA
    (967, 7, 9),  // YE
    (968, 7, 9),  // OM
    (970, 8, 10), // PS
    (971, 5, 12), // AE
    (972, 7, 12), // IL
    (973, 8, 8),  // BH
    (974, 7, 11), // QA
    (975, 7, 8),  // BT
    (976, 8, 10), // MN
    (977, 8, 11), // NP
    (979, 9, 9),  // 001
    (992, 9, 9),  // TJ
    (993, 8, 8),  // TM
    (994, 9, 9),  // AZ
    (995, 9, 9),  // GE
    (996, 9, 10), // KG
    (998, 9, 9),  // UZ
];

/// The country code at the start of `digits` (codes are prefix-free) and its
/// national length bounds.
pub(crate) fn country_code(digits: &[u8]) -> Option<(usize, u8, u8)> {
    let mut code = 0u16;
    for (len, d) in digits.iter().take(3).enumerate() {
        code = code * 10 + u16::from(d - b'0');
        if let Ok(i) = COUNTRY_CODES.binary_search_by_key(&code, |&(c, _, _)| c) {
            let (_, lo, hi) = COUNTRY_CODES[i];
            return Some((len + 1, lo, hi));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_codes_of_every_length() {
        assert_eq!(country_code(b"14155552671"), Some((1, 7, 10)));
        assert_eq!(country_code(b"442079460958").map(|c| c.0), Some(2));
        assert_eq!(country_code(b"85291234567").map(|c| c.0), Some(3));
        assert_eq!(country_code(b"8613812345678").map(|c| c.0), Some(2));
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

/// libphonenumber as the oracle: the table matches its metadata, and every
/// example number it ships (fixed line and mobile, for every region) is
/// masked when written in E.164 and in the international format.
#[cfg(test)]
mod metadata {
    use super::*;
    use std::collections::BTreeMap;

    use phonenumber::metadata::DATABASE;

    #[test]
    fn table_matches_libphonenumber() {
        let mut want: BTreeMap<u16, (u8, u8)> = BTreeMap::new();
        for m in DATABASE.iter() {
            let d = m.descriptors();
            let types = [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.uan(),
                d.pager(),
                d.voicemail(),
            ];
            let lens: Vec<u16> = types
                .into_iter()
                .flatten()
                .flat_map(|x| x.possible_length().to_vec())
                .chain(d.general().possible_length().iter().copied())
                .collect();
            let (Some(lo), Some(hi)) = (lens.iter().min(), lens.iter().max()) else {
                continue;
            };
            let e = want.entry(m.country_code()).or_insert((u8::MAX, 0));
            e.0 = e.0.min(*lo as u8);
            e.1 = e.1.max(*hi as u8);
        }
        let ours: BTreeMap<u16, (u8, u8)> = COUNTRY_CODES
            .iter()
            .map(|&(c, lo, hi)| (c, (lo, hi)))
            .collect();
        assert_eq!(ours, want);
    }

    #[test]
    fn every_example_number_is_masked() {
        let mut checked = 0;
        for m in DATABASE.iter() {
            let d = m.descriptors();
            for example in [d.fixed_line(), d.mobile()]
                .into_iter()
                .flatten()
                .filter_map(|x| x.example())
            {
                let e164 = format!("+{}{}", m.country_code(), example);
                let Ok(parsed) = phonenumber::parse(None, &e164) else {
                    continue;
                };
                let intl = parsed
                    .format()
                    .mode(phonenumber::Mode::International)
                    .to_string();
                for written in [e164.clone(), intl] {
                    let masked = crate::mask(&format!("call me on {written} thanks"));
                    let digits: String = written.chars().filter(char::is_ascii_digit).collect();
                    let national: String = example.chars().collect();
                    assert!(
                        !masked.contains(&digits)
                            && !masked.contains(&national)
                            && masked.contains('*'),
                        "{written} -> {masked}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 400, "only {checked} examples");
    }
}
