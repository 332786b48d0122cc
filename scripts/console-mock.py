#!/usr/bin/env python3
"""Dev mock of the helpdesk console API, for working on the web page alone.

Serves service/src/console/assets/{index.html,app.js,app.css} (as /, /assets/app.js,
/assets/app.css, like the Rust server) and the JSON API
the Rust server implements (/api/me, /api/session, /api/handoffs...,
/api/articles/{id}, /api/events as text/event-stream), in memory, with six
sample handoffs. Every ~10 s it alternately opens a new handoff or adds a
shopper message to an open one (so each happens every ~20 s).

    python3 scripts/console-mock.py                # token sign-in: dev-token (li), wang-token (wang)
    python3 scripts/console-mock.py --open         # loopback style: sign in with an agent name only
    python3 scripts/console-mock.py --port 8765 --quiet   # --quiet: no generated traffic
    python3 scripts/console-mock.py --as li        # no sign-in at all (headless screenshots)

Fault injection for trying error paths:
    curl -XPOST localhost:8765/api/_mock/fail -d '{"match":"/messages","status":503,"times":1,"after":true}'
("after": true stores the message first, then answers 503, as a lost reply would.)
"""
import argparse
import itertools
import json
import random
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse, parse_qs

ASSETS = Path(__file__).resolve().parent.parent / "service/src/console/assets"
TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
         "app.css": "text/css; charset=utf-8"}
TOKENS = {"dev-token": "li", "wang-token": "wang"}

LOCK = threading.Condition()
HANDOFFS = {}
EVENTS = []          # (cursor, kind, handoff snapshot)
CURSOR = itertools.count(1000)
SESSIONS = {}        # cookie -> agent name
SEEN_MESSAGES = {}   # client_message_id -> turn
FAULTS = []
OPTS = None
KEEP_EVENTS = 200


def now():
    return datetime.now(timezone.utc)


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else ""


def ago(minutes):
    return now() - timedelta(minutes=minutes)


ARTICLES = {
    "returns-damaged": {
        "zh": ("收到商品破损或有瑕疵怎么办", "收到商品破损、有洞、脱线或与描述不符：\n\n1. 签收后 7 天内在订单页点击「申请售后」，选择「商品破损/瑕疵」。\n2. 上传 2–3 张能看清问题部位的照片。\n3. 审核通过后可选择：退货退款、换货，或部分退款保留商品。\n4. 质量问题的退回运费由本店承担，请选择「运费到付」或先垫付后申请补偿。\n\n审核一般在 24 小时内完成。"),
        "en": ("Damaged or faulty items", "If an item arrives damaged, with a hole or loose stitching, or not as described:\n\n1. Within 7 days of delivery, open the order and choose \"Request after-sales\" > \"Damaged/faulty\".\n2. Upload 2-3 photos that clearly show the problem.\n3. Once approved, choose a refund, an exchange, or a partial refund and keep the item.\n4. We pay return shipping for quality problems.\n\nReviews usually finish within 24 hours."),
    },
    "refund-timing": {
        "zh": ("退款多久到账", "退款审核通过后：\n- 余额/花呗：即时到账\n- 银行卡：1–5 个工作日\n- 信用卡：3–7 个工作日，以银行入账为准\n\n超过时限仍未到账，请提供订单号，客服会查询退款流水号。"),
        "en": ("When will my refund arrive?", "After a refund is approved:\n- Store balance: immediately\n- Debit card: 1-5 business days\n- Credit card: 3-7 business days, depending on your bank\n\nIf it is later than that, give us the order number and we will look up the refund reference."),
    },
    "shipping-delays": {
        "zh": ("物流延迟与催件", "大促期间发货可能延迟 1–3 天。物流超过 72 小时未更新时，客服可以向快递公司发起催件或核实包裹状态。\n如包裹确认丢失，本店将补发或全额退款。"),
        "en": ("Shipping delays and chasing a parcel", "During sales, dispatch can take 1-3 extra days. If tracking has not updated for 72 hours, an agent can ask the carrier to chase the parcel.\nIf a parcel is confirmed lost, we reship or refund in full."),
    },
    "invoice": {
        "zh": ("如何开具发票", "本店支持电子普通发票和增值税专用发票。\n- 电子普票：订单完成后在订单详情页「申请发票」，填写抬头和税号，1 个工作日内发送到邮箱。\n- 专票：需提供公司名称、税号、开户行及账号、注册地址和电话，由客服人工开具，3 个工作日内寄出。"),
        "en": ("Getting an invoice", "We issue electronic invoices for every order. Open the order, choose \"Request invoice\", and enter the company name and tax ID; the PDF arrives by e-mail within one business day."),
    },
    "size-guide": {
        "zh": ("尺码指南", "外套类建议按平时尺码选择；喜欢宽松可大一码。\nS：胸围 96 / 衣长 68\nM：胸围 100 / 衣长 70\nL：胸围 106 / 衣长 72\nXL：胸围 112 / 衣长 74（单位 cm）"),
        "en": ("Size guide", "Coats run true to size; size up for a relaxed fit.\nS: chest 96 / length 68\nM: chest 100 / length 70\nL: chest 106 / length 72\nXL: chest 112 / length 74 (cm)"),
    },
}


def turn(role, text, minutes_ago, label="neutral", score=0.1, intent="", agent_id=""):
    return {"turn_id": "t-" + uuid.uuid4().hex[:10], "role": role, "text": text, "intent": intent,
            "sentiment": {"label": label, "score": score} if role == "customer" else {"label": "", "score": 0},
            "at": ts(ago(minutes_ago)), "agent_id": agent_id}


def handoff(hid, lang, queue, reason, prio, summary, turns, articles, suggestions, entities,
            created_min, due_in_min, claimed_by="", claimed_min=None):
    created = ago(created_min)
    return {
        "handoff_id": hid, "conversation_id": "c-" + hid.split("-")[1], "reason": reason,
        "status": "claimed" if claimed_by else "waiting", "queue": queue, "priority": prio,
        "summary": summary, "language": lang, "transcript": turns,
        "kb_articles_tried": [{"id": a, "title": ARTICLES[a][lang][0]} for a in articles],
        "suggested_replies": [{"text": t, "article_id": a, "score": s} for t, a, s in suggestions],
        "entities": entities, "created_at": ts(created), "due_at": ts(now() + timedelta(minutes=due_in_min)),
        "claimed_at": ts(ago(claimed_min)) if claimed_by else "", "resolved_at": "",
        "claimed_by": claimed_by, "resolution": "",
    }


def seed():
    hs = [
        handoff("h-1001", "zh", "after_sales", "needs_agent", 2,
                "大衣袖子有破洞，顾客要求换货或退款，已上传照片",
                [turn("customer", "你好，我昨天收到的羊毛大衣，左边袖子上有一个小洞", 16, "negative", 0.45, "damaged_or_wrong_item"),
                 turn("bot", "非常抱歉给您带来不便！收到的商品有破损可以在签收 7 天内申请售后，请上传能看清破洞的照片。", 16),
                 turn("customer", "照片已经传了。我是要送人的，这周六就要用，能不能直接给我换一件新的？", 14, "negative", 0.55, "exchange_request"),
                 turn("bot", "好的，换货需要人工客服为您处理，正在为您转接，请稍候。", 14)],
                ["returns-damaged"],
                [("非常抱歉大衣出现破洞！照片我们已经收到，确认是质量问题。我这边马上为您安排换货，新的大衣今天会用顺丰发出，预计周五前送达，退回运费由我们承担。", "returns-damaged", 0.86),
                 ("抱歉给您添麻烦了。如果您不方便等待换货，也可以选择部分退款保留商品，或者全额退款，您看哪种更合适？", "returns-damaged", 0.71)],
                {"order_id": "TB20240518007731", "tracking_number": "SF1402938475612"}, 14, 3),
        handoff("h-1002", "en", "payments", "customer_request", 2,
                "Refund approved 9 days ago for a returned blender but not received on card",
                [turn("customer", "Hi, I returned the blender two weeks ago and the refund was approved on the 10th. Still nothing on my card.", 31, "negative", 0.4, "refund_status"),
                 turn("bot", "Refunds to a credit card take 3-7 business days after approval, depending on your bank.", 31),
                 turn("customer", "It's been 9 days. I'd like to talk to a person please.", 29, "negative", 0.5, "human_agent"),
                 turn("agent", "Hi, this is Wang. Let me look up the refund reference for you, one moment.", 6, agent_id="wang")],
                ["refund-timing"],
                [("I'm sorry for the wait. Your refund was sent on the 10th; the bank reference is below, and your bank can trace it with that number.", "refund-timing", 0.74)],
                {"order_id": "4417 2290 5512", "tracking_number": ""}, 31, 18, claimed_by="wang", claimed_min=7),
        handoff("h-1003", "zh", "logistics", "negative_sentiment", 1,
                "包裹 6 天未更新，顾客非常生气，要求今天给说法，否则投诉",
                [turn("customer", "我的订单TB20240511883402到底什么时候到？", 27, "negative", 0.5, "order_tracking"),
                 turn("bot", "您的包裹由中通快递承运，单号 ZT7731902846551，最近一次更新是 5 月 12 日到达杭州转运中心。", 27),
                 turn("customer", "6 天了还在杭州？？你们是不是把我的包裹弄丢了", 25, "angry", 0.78, "order_tracking"),
                 turn("bot", "很抱歉让您久等了，我来为您转接人工客服查看包裹情况。", 25),
                 turn("customer", "第三次问了！今天不给我说法我就去投诉，电话 138****5678 直接打给我", 21, "angry", 0.92, "complaint")],
                ["shipping-delays"],
                [("非常抱歉让您等了这么久！我已经联系中通加急核实，今天 18 点前一定给您答复；如果确认丢件，我们马上为您补发或全额退款，您选哪种都可以。", "shipping-delays", 0.81)],
                {"order_id": "TB20240511883402", "tracking_number": "ZT7731902846551"}, 26, -6),
        handoff("h-1004", "zh", "general", "needs_agent", 3,
                "公司采购需要开增值税专用发票，已提供抬头和税号",
                [turn("customer", "我们是公司采购，需要开增值税专票，怎么弄？", 9, "neutral", 0.1, "invoice_request"),
                 turn("bot", "电子普票可以在订单详情页直接申请；增值税专用发票需要人工客服为您开具。", 9),
                 turn("customer", "抬头：杭州某某科技有限公司，税号 91330106MA2****X4，寄到 [地址已隐藏]", 8, "neutral", 0.12, "invoice_request")],
                ["invoice"],
                [("您好，专票需要再提供开户行及账号、注册地址和电话，收到后 3 个工作日内为您开具并寄出。", "invoice", 0.79)],
                {"order_id": "TB20240516120934", "tracking_number": ""}, 9, 51),
        handoff("h-1005", "en", "presale", "low_confidence", 4,
                "Asks which size of the wool coat fits 178 cm / 75 kg with a thick jumper under it",
                [turn("customer", "hey, 178cm 75kg, broad shoulders, want to wear a thick jumper under it. M or L?", 4, "neutral", 0.05, "size_advice"),
                 turn("bot", "Coats run true to size; size up for a relaxed fit. Would you like the size chart?", 4),
                 turn("customer", "yeah I saw the chart, still not sure about the shoulders tbh", 3, "neutral", 0.15, "size_advice")],
                ["size-guide"],
                [("With broad shoulders and a thick jumper underneath, I'd go for L: it's 106 cm at the chest and the shoulders have room to move. M will feel snug with layers.", "size-guide", 0.77),
                 ("Happy to help! Could you tell me your usual size in other coats? That's the best guide for the fit.", "size-guide", 0.52)],
                {"order_id": "", "tracking_number": ""}, 3, 117),
        handoff("h-1006", "en", "logistics", "customer_request", 2,
                "Tracking unchanged for 4 days; shopper wants to know if the parcel is lost",
                [turn("customer", "My order 7730 1184 hasn't moved since Monday. Tracking says 'in transit' for 4 days.", 12, "negative", 0.35, "order_tracking"),
                 turn("bot", "If tracking has not updated for 72 hours, an agent can ask the carrier to chase the parcel.", 12),
                 turn("customer", "OK please do that, can I speak to someone?", 11, "neutral", 0.3, "human_agent")],
                ["shipping-delays"],
                [("Sorry about the wait. I've asked the carrier to chase the parcel and will update you within 24 hours; if it turns out to be lost we'll reship it right away.", "shipping-delays", 0.8)],
                {"order_id": "7730 1184", "tracking_number": "1Z999AA10123456784"}, 11, 19),
    ]
    for h in hs:
        HANDOFFS[h["handoff_id"]] = h


NEW_POOL = [
    ("zh", "after_sales", "needs_agent", 2, "收到的鞋子左右脚尺码不一样，要求换货",
     [("你好，收到的运动鞋一只 40 一只 41，怎么回事", "negative", 0.55, "damaged_or_wrong_item")], ["returns-damaged"],
     [("非常抱歉发错了尺码！我马上为您安排换货，新鞋今天发出，旧鞋快递员上门取件，运费由我们承担。", "returns-damaged", 0.83)],
     {"order_id": "TB20240519004418", "tracking_number": ""}),
    ("en", "complaints", "negative_sentiment", 1, "Courier left the parcel outside in the rain; box soaked, shopper furious",
     [("Your courier LEFT MY PARCEL IN THE RAIN. Everything is soaked. This is unacceptable.", "angry", 0.88, "complaint")], ["shipping-delays"],
     [("I'm really sorry, that should never happen. Please send a photo of the parcel and I'll arrange a replacement today and file a complaint with the carrier.", "shipping-delays", 0.69)],
     {"order_id": "5521 0937", "tracking_number": "1Z999AA10123459981"}),
    ("zh", "payments", "customer_request", 3, "付款时提示银行卡限额，询问能否分两次付款",
     [("付款一直提示超出限额，能不能分开付？", "neutral", 0.2, "payment_problem")], ["refund-timing"],
     [("您好，单笔订单暂不支持拆分付款，可以换用其他银行卡，或在银行 App 临时调高网上支付限额后再试。", "", 0.6)],
     {"order_id": "TB20240519331870", "tracking_number": ""}),
    ("en", "presale", "low_confidence", 4, "Asks whether the cashmere scarf can be gift-wrapped with a card",
     [("can you gift wrap the cashmere scarf and add a little card?", "positive", 0.02, "product_info")], [],
     [("Yes! Add a note at checkout and we'll gift-wrap the scarf and include a handwritten card at no extra cost.", "", 0.58)],
     {"order_id": "", "tracking_number": ""}),
]
FOLLOWUPS = {
    "zh": [("还在吗？等了好久了", "negative", 0.6), ("麻烦快一点，谢谢", "neutral", 0.3), ("照片我补发一张，你看下", "neutral", 0.25),
           ("怎么还没人回复？", "angry", 0.8)],
    "en": [("Hello? Anyone there?", "negative", 0.55), ("Thanks, just let me know.", "neutral", 0.15),
           ("This is taking forever.", "angry", 0.75), ("I added a photo, can you see it?", "neutral", 0.2)],
}


def emit(kind, h):
    with LOCK:
        EVENTS.append((next(CURSOR), kind, json.loads(json.dumps(h))))
        del EVENTS[:-KEEP_EVENTS]
        LOCK.notify_all()


def generator():
    n = 2000
    step = 0
    while True:
        time.sleep(10)
        step += 1
        with LOCK:
            open_ = [h for h in HANDOFFS.values() if h["status"] != "resolved"]
        if step % 2 == 1:
            if len(open_) >= 14:
                old = min((h for h in open_ if h["status"] == "waiting" and h["handoff_id"] >= "h-2000"),
                          key=lambda h: h["created_at"], default=None)
                if old:
                    with LOCK:
                        old.update(status="resolved", claimed_by=old["claimed_by"] or "zhao", resolution="handled by phone",
                                   resolved_at=ts(now()))
                    emit("resolved", old)
                continue
            n += 1
            lang, q, reason, prio, summary, msgs, arts, sugg, ent = NEW_POOL[n % len(NEW_POOL)]
            turns = [turn("customer", t, 0, l, s, i) for t, l, s, i in msgs]
            turns.append(turn("bot", "正在为您转接人工客服，请稍候。" if lang == "zh" else "Let me get a colleague for you, one moment.", 0))
            h = handoff(f"h-{n}", lang, q, reason, prio, summary, turns, arts, sugg, ent, 0,
                        {1: 10, 2: 20, 3: 60, 4: 120}[prio])
            with LOCK:
                HANDOFFS[h["handoff_id"]] = h
            emit("created", h)
        elif open_:
            h = random.choice(open_)
            text, label, score = random.choice(FOLLOWUPS[h["language"]])
            with LOCK:
                h["transcript"].append(turn("customer", text, 0, label, score, "human_agent"))
            emit("customer_message", h)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if not OPTS.quiet_log:
            super().log_message(fmt, *args)

    def send_json(self, status, body, headers=()):
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def err(self, status, msg):
        self.send_json(status, {"error": msg})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return None

    def agent(self):
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "xiaoer_console" and v in SESSIONS:
                return SESSIONS[v]
        return OPTS.as_agent

    def fault(self, path, store_first):
        for f in FAULTS:
            if f["match"] in path and f["times"] > 0 and bool(f.get("after")) == store_first:
                f["times"] -= 1
                self.err(f["status"], f.get("error") or {503: "database unavailable", 409: "claimed by zhao"}.get(f["status"], "injected"))
                return True
        return False

    def do_GET(self):
        u = urlparse(self.path)
        p = u.path
        # The paths the Rust server serves: / and /assets/app.{js,css}.
        if p == "/" or p in ("/assets/app.js", "/assets/app.css"):
            name = "index.html" if p == "/" else p.rsplit("/", 1)[1]
            data = (ASSETS / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", TYPES[name])
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)
            return
        if not p.startswith("/api/"):
            return self.err(404, "not found")
        me = self.agent()
        if p == "/api/me":
            if not me:
                return self.err(401, "sign in with a helpdesk token")
            return self.send_json(200, {"name": me, "role": "helpdesk", "sign_in_required": not OPTS.open})
        if not me:
            return self.err(401, "sign in")
        if self.fault(p, False):
            return
        if p == "/api/handoffs":
            with LOCK:
                hs = [h for h in HANDOFFS.values() if h["status"] != "resolved"]
                return self.send_json(200, {"handoffs": json.loads(json.dumps(hs))})
        if p.startswith("/api/handoffs/"):
            h = HANDOFFS.get(p.split("/")[3])
            return self.send_json(200, h) if h else self.err(404, "no such handoff")
        if p.startswith("/api/articles/"):
            a = ARTICLES.get(p.split("/")[3])
            lang = (parse_qs(u.query).get("lang") or ["zh"])[0]
            if not a or lang not in a:
                return self.err(404, "no such article")
            return self.send_json(200, {"id": p.split("/")[3], "title": a[lang][0], "body": a[lang][1]})
        if p == "/api/events":
            return self.events()
        return self.err(404, "not found")

    def events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        last = self.headers.get("Last-Event-ID")
        with LOCK:
            oldest = EVENTS[0][0] if EVENTS else None
            cursor = EVENTS[-1][0] if EVENTS else 0
        try:
            self.wfile.write(b"retry: 3000\n\n")
            if last is not None:
                cursor = int(last) if last.isdigit() else -1
                if oldest is not None and cursor < oldest - 1:
                    self.wfile.write(b"event: resync\ndata: {}\n\n")
                    cursor = EVENTS[-1][0]
            self.wfile.flush()
            while True:
                with LOCK:
                    pending = [e for e in EVENTS if e[0] > cursor]
                    if not pending:
                        LOCK.wait(15)
                        pending = [e for e in EVENTS if e[0] > cursor]
                if not pending:
                    self.wfile.write(b": keepalive\n\n")
                for cur, kind, h in pending:
                    data = json.dumps({"kind": kind, "handoff": h}, ensure_ascii=False)
                    self.wfile.write(f"event: handoff\nid: {cur}\ndata: {data}\n\n".encode())
                    cursor = cur
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def do_POST(self):
        p = urlparse(self.path).path
        body = self.body()
        if body is None:
            return self.err(400, "invalid JSON")
        if p == "/api/_mock/fail":
            FAULTS.append({"match": body.get("match", ""), "status": body.get("status", 503),
                           "times": body.get("times", 1), "after": body.get("after", False), "error": body.get("error")})
            return self.send_json(200, {"ok": True})
        if p == "/api/session":
            if OPTS.open:
                name = str(body.get("agent_id", "")).strip()
                if not name or len(name) > 64:
                    return self.err(400, "agent_id required")
            else:
                name = TOKENS.get(body.get("token", ""))
                if not name:
                    return self.err(401, "unknown token")
            sid = secrets.token_urlsafe(16)
            SESSIONS[sid] = name
            return self.send_json(200, {"name": name, "role": "helpdesk"},
                                  [("Set-Cookie", f"xiaoer_console={sid}; HttpOnly; SameSite=Strict; Path=/")])
        if p == "/api/session/logout":
            return self.send_json(200, {}, [("Set-Cookie", "xiaoer_console=; Max-Age=0; Path=/")])
        me = self.agent()
        if not me:
            return self.err(401, "sign in")
        if self.fault(p, False):
            return
        parts = p.split("/")
        if len(parts) != 5 or parts[2] != "handoffs":
            return self.err(404, "not found")
        with LOCK:
            h = HANDOFFS.get(parts[3])
        if not h:
            return self.err(404, "no such handoff")
        action = parts[4]
        if h["status"] == "resolved":
            return self.err(409, "handoff already resolved")
        if action == "claim":
            if h["status"] == "claimed" and h["claimed_by"] != me:
                return self.err(409, f"claimed by {h['claimed_by']}")
            if h["status"] == "waiting":
                with LOCK:
                    h.update(status="claimed", claimed_by=me, claimed_at=ts(now()))
                emit("claimed", h)
            return self.send_json(200, h)
        if h["status"] != "claimed":
            return self.err(409, "not claimed")
        if h["claimed_by"] != me:
            return self.err(409, f"claimed by {h['claimed_by']}")
        if action == "messages":
            text = str(body.get("text", "")).strip()
            cmid = str(body.get("client_message_id", ""))
            if not text or not cmid:
                return self.err(400, "text and client_message_id required")
            if cmid in SEEN_MESSAGES:
                return self.send_json(200, SEEN_MESSAGES[cmid])
            t = turn("agent", text, 0, agent_id=me)
            print(f"[mock] message {cmid} suggestion_text={'yes' if body.get('suggestion_text') else 'no'}")
            with LOCK:
                h["transcript"].append(t)
                SEEN_MESSAGES[cmid] = t
            emit("agent_message", h)
            if self.fault(p, True):
                return
            return self.send_json(200, t)
        if action == "resolve":
            res = str(body.get("resolution", "")).strip()
            if not res:
                return self.err(400, "resolution required")
            with LOCK:
                h.update(status="resolved", resolution=res, resolved_at=ts(now()))
            emit("resolved", h)
            return self.send_json(200, h)
        return self.err(404, "not found")


def main():
    global OPTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--open", action="store_true", help="no tokens: sign in with an agent name")
    ap.add_argument("--quiet", action="store_true", help="no generated handoffs or messages")
    ap.add_argument("--as", dest="as_agent", default=None, help="treat every request as signed in by this agent (for headless screenshots)")
    ap.add_argument("--quiet-log", action="store_true", help="no request log")
    OPTS = ap.parse_args()
    seed()
    if not OPTS.quiet:
        threading.Thread(target=generator, daemon=True).start()
    srv = ThreadingHTTPServer((OPTS.host, OPTS.port), Handler)
    srv.daemon_threads = True
    print(f"console mock on http://{OPTS.host}:{OPTS.port}/  tokens: {', '.join(TOKENS) if not OPTS.open else '(open)'}")
    srv.serve_forever()


if __name__ == "__main__":
    main()
