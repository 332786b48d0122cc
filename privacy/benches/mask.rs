//! Cost of masking one shopper message: `cargo bench -p xiaoer-privacy`.
//!
//! A fixed set of realistic messages (written for this benchmark, not taken
//! from the corpus): Chinese, English and mixed, most with no personal data
//! at all (the common case), some with one or several values. Reports the
//! time per pass over the whole set; µs per message and messages per second
//! follow from it (the set's size is printed).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xiaoer_privacy::{mask, mask_keeping};

const MESSAGES: &[&str] = &[
    "亲，在吗？我昨天下的单怎么还没发货",
    "这件衣服有没有M码的，我身高165体重52kg",
    "订单号 260312998877665544 物流一直没更新，麻烦查一下",
    "快递单号 SF1402233445566 显示已签收但我没收到",
    "我的手机号是13712345678，快递员可以直接打我",
    "收件人李明 电话 186-2345-6789 地址 江苏省南京市鼓楼区中山北路200号3栋1202室",
    "退款退到哪张卡了？卡号 6217 0012 3456 7890 尾号对不上",
    "发票抬头写公司名就行，税号我晚点发你",
    "优惠券 NEWYEAR50 用不了，提示已过期",
    "你们客服电话多少？020-87654321 打不通",
    "身份证号码 44010619900307211X 报关用的",
    "能不能改地址，改成杭州市西湖区文三路90号",
    "太慢了！！！再不发货我要投诉了",
    "微信号 zhang_wei88 加我发图片",
    "颜色选错了想换成黑色的，可以吗",
    "Hi, where is my order #A2093847? It's been 10 days.",
    "Can you ship to 742 Evergreen Terrace, Springfield, OR 97477?",
    "My phone is (503) 555-0142 if the courier needs it",
    "Do you have this in size 9.5 US? The 9 was too small.",
    "Please refund to my card ending 4242, not store credit",
    "email me at sam.lee@example.org with the invoice please",
    "tracking 1Z999AA10123456784 says delivered but nothing here",
    "I live at Flat 3, 18 Hill Road, Bristol BS8 1TJ, call +44 7700 900321",
    "The price dropped to $39.99 the day after I bought it, can I get the difference?",
    "my name is Olivia Brown and I was charged twice on 12/03/2026",
    "order 1234567890123456789 arrived broken, photos attached",
    "你好 my order 2026031455667788 还没到, phone +852 9123 4567",
    "寄到 Blk 123 Ang Mo Kio Ave 3 #04-56 Singapore 560123 thanks",
    "passport E12345678 清关要用，name ZHANG SAN",
    "这个多少钱？¥299 还是 ¥259，有满减吗",
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("privacy");
    group.throughput(Throughput::Elements(MESSAGES.len() as u64));
    println!("{} messages per iteration", MESSAGES.len());
    group.bench_function("mask_30_messages", |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(mask(black_box(m)));
            }
        })
    });
    let known = ["1234567890123456789", "2026031455667788"];
    group.bench_function("mask_keeping_30_messages", |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(mask_keeping(black_box(m), &known));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
