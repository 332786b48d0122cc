// 店小二 helpdesk console: the agents' page. Plain ES2020, no build step.
'use strict';

const I18N = {
  zh: {
    appName: '店小二 · 客服台', shortcuts: '快捷键', signOut: '退出', retry: '重试', dismiss: '关闭',
    token: '访问令牌', agentName: '客服名', signIn: '登录',
    signInHintToken: '请输入管理员发给你的访问令牌。', signInHintAgent: '本机模式：输入你的客服名即可。',
    emptyQueue: '没有等待中的会话', emptyQueueHint: '新的转人工会话会实时出现在这里。',
    pickOne: '从左侧选择一个会话', pickOneHint: 'j / k 切换，c 接手，? 查看全部快捷键',
    claim: '接手', resolve: '结束会话', resolutionPh: '处理结果（必填），例如：已补发新大衣，顺丰单号…',
    resolveConfirm: '确认结束', cancel: '取消', sendHint: 'Ctrl+Enter 发送', send: '发送',
    suggestions: '建议回复', entities: '订单信息', sentiment: '情绪走势', articles: '机器人已参考的文章',
    q_logistics: '物流', q_after_sales: '售后', q_payments: '支付', q_presale: '售前', q_complaints: '投诉', q_general: '综合',
    r_customer_request: '顾客要求人工', r_negative_sentiment: '顾客情绪激动', r_low_confidence: '机器人没听懂', r_needs_agent: '需人工处理',
    waiting: '等待中', claimedBy: (x) => `${x} 处理中`, claimedByMe: '我处理中', resolved: '已结束',
    onTime: '按时', dueSoon: '即将超时', overdue: '已超时', dueIn: (x) => `剩 ${x}`, overdueBy: (x) => `已超时 ${x}`,
    justNow: '刚刚', min: (n) => `${n} 分钟`, hour: (h, m) => m ? `${h} 小时 ${m} 分` : `${h} 小时`, day: (n) => `${n} 天`,
    waited: (x) => `已等 ${x}`, createdAt: (x) => `转入 ${x}`,
    role_customer: '顾客', role_bot: '机器人', role_agent: '客服', me: '我',
    s_positive: '满意', s_neutral: '平静', s_negative: '不满', s_angry: '生气', lastSentiment: (l, s) => `最近：${l} ${s}`,
    order_id: '订单号', tracking_number: '运单号', copied: '已复制', clickCopy: '点击复制',
    insert: '插入', inserted: '已插入', source: '来源文章', lang_zh: '中文', lang_en: '英文',
    live: '实时', reconnecting: '重新连接中…',
    errClaimedWho: (x) => `该会话已被 ${x} 接手。`, errClaimed: '该会话已被其他客服接手。',
    errNotClaimed: '请先接手该会话。', errResolved: '该会话已经结束。',
    err503: '数据库暂时不可用：请重试，内容不会丢失。', errNetwork: '连不上服务器：请检查网络后重试，内容不会丢失。',
    err400: '请求无效', err403: '没有权限执行此操作。', err404: '会话不存在或已被删除。', errGeneric: '出错了',
    signInFailed: '登录失败', badToken: '令牌无效，请检查后重试。', needText: '请填写处理结果。',
    claimFirst: '接手后才能发送（按 c 接手）', otherWorking: (x) => `${x} 正在处理此会话`, closedNote: (x) => `会话已结束：${x}`,
    fromSuggestion: '基于建议回复', replyZh: '回复顾客（中文）…', replyEn: '回复顾客（英文）…', draftHere: '可以先写草稿，接手后发送', none: '无', noArticles: '机器人没有参考文章', noSuggestions: '暂无建议回复',
    waitingN: (n) => `等待 ${n}`, mineN: (n) => `我的 ${n}`, claimedN: (n) => `处理中 ${n}`,
    h_next: '下一个会话', h_prev: '上一个会话', h_claim: '接手当前会话', h_resolve: '结束当前会话',
    h_focus: '光标移到回复框', h_send: '发送回复', h_insert: '插入第 1–3 条建议回复', h_help: '显示 / 关闭本帮助', h_esc: '关闭弹窗 / 离开输入框',
  },
  en: {
    appName: 'xiaoer · Helpdesk', shortcuts: 'Shortcuts', signOut: 'Sign out', retry: 'Retry', dismiss: 'Dismiss',
    token: 'Access token', agentName: 'Agent name', signIn: 'Sign in',
    signInHintToken: 'Enter the access token your admin gave you.', signInHintAgent: 'Local mode: just enter your agent name.',
    emptyQueue: 'Nobody is waiting', emptyQueueHint: 'New handoffs appear here as they arrive.',
    pickOne: 'Pick a conversation on the left', pickOneHint: 'j / k to move, c to claim, ? for all shortcuts',
    claim: 'Claim', resolve: 'Resolve', resolutionPh: 'Resolution (required), e.g. reshipped the coat, SF tracking …',
    resolveConfirm: 'Resolve', cancel: 'Cancel', sendHint: 'Ctrl+Enter to send', send: 'Send',
    suggestions: 'Suggested replies', entities: 'Order details', sentiment: 'Sentiment', articles: 'Articles the bot tried',
    q_logistics: 'Logistics', q_after_sales: 'After-sales', q_payments: 'Payments', q_presale: 'Pre-sale', q_complaints: 'Complaints', q_general: 'General',
    r_customer_request: 'Asked for a person', r_negative_sentiment: 'Upset shopper', r_low_confidence: 'Bot unsure', r_needs_agent: 'Needs an agent',
    waiting: 'Waiting', claimedBy: (x) => `${x} on it`, claimedByMe: 'Mine', resolved: 'Resolved',
    onTime: 'On time', dueSoon: 'Due soon', overdue: 'Overdue', dueIn: (x) => `${x} left`, overdueBy: (x) => `Overdue by ${x}`,
    justNow: 'just now', min: (n) => `${n} min`, hour: (h, m) => m ? `${h} h ${m} min` : `${h} h`, day: (n) => `${n} d`,
    waited: (x) => `waiting ${x}`, createdAt: (x) => `handed off ${x}`,
    role_customer: 'Shopper', role_bot: 'Bot', role_agent: 'Agent', me: 'me',
    s_positive: 'positive', s_neutral: 'neutral', s_negative: 'negative', s_angry: 'angry', lastSentiment: (l, s) => `latest: ${l} ${s}`,
    order_id: 'Order', tracking_number: 'Tracking', copied: 'Copied', clickCopy: 'Click to copy',
    insert: 'Insert', inserted: 'Inserted', source: 'source', lang_zh: 'Chinese', lang_en: 'English',
    live: 'Live', reconnecting: 'Reconnecting…',
    errClaimedWho: (x) => `This conversation was claimed by ${x}.`, errClaimed: 'Someone else claimed this conversation.',
    errNotClaimed: 'Claim the conversation first.', errResolved: 'This conversation is already resolved.',
    err503: 'Database unavailable: retry, nothing is lost.', errNetwork: 'Cannot reach the server: check the network and retry, nothing is lost.',
    err400: 'Invalid request', err403: 'You are not allowed to do that.', err404: 'No such conversation.', errGeneric: 'Something went wrong',
    signInFailed: 'Sign-in failed', badToken: 'That token is not valid.', needText: 'Please write a resolution.',
    claimFirst: 'Claim to send (press c)', otherWorking: (x) => `${x} is handling this conversation`, closedNote: (x) => `Resolved: ${x}`,
    fromSuggestion: 'from a suggestion', replyZh: 'Reply to the shopper (in Chinese)…', replyEn: 'Reply to the shopper (in English)…', draftHere: 'Draft here; claim to send', none: 'None', noArticles: 'The bot used no articles', noSuggestions: 'No suggestions',
    waitingN: (n) => `${n} waiting`, mineN: (n) => `${n} mine`, claimedN: (n) => `${n} claimed`,
    h_next: 'Next conversation', h_prev: 'Previous conversation', h_claim: 'Claim the open conversation', h_resolve: 'Resolve the open conversation',
    h_focus: 'Focus the reply box', h_send: 'Send the reply', h_insert: 'Insert suggestion 1–3', h_help: 'Show / hide this help', h_esc: 'Close a dialog / leave a field',
  },
};
const QUEUES = ['logistics', 'after_sales', 'payments', 'presale', 'complaints', 'general'];
const SOON_MS = 5 * 60 * 1000;

const S = {
  lang: pickLang(), me: null, signInRequired: true, handoffs: new Map(), openId: null, open: null,
  drafts: new Map(), fetchSeq: 0, es: null, sending: false, started: false,
};
const $ = (sel) => document.querySelector(sel);

function pickLang() {
  const saved = localStorage.getItem('xiaoer.console.lang');
  if (saved === 'zh' || saved === 'en') return saved;
  return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}
function t(key, ...args) {
  const v = I18N[S.lang][key] ?? I18N.en[key] ?? key;
  return typeof v === 'function' ? v(...args) : v;
}
function el(tag, props, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-') || k === 'title' || k === 'type' || k === 'href' || k === 'tabindex') n.setAttribute(k, v);
    else n[k] = v;
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) n.append(kid);
  return n;
}
const fill = (node, ...kids) => node.replaceChildren(...kids.flat().filter((k) => k != null && k !== false));
const svgEl = (tag, attrs) => {
  const n = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
};
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------- time ----------
const ms = (s) => (s ? Date.parse(s) : NaN);
function span(d) {
  const m = Math.floor(Math.abs(d) / 60000);
  if (m < 1) return t('justNow');
  if (m < 60) return t('min', m);
  if (m < 1440) return t('hour', Math.floor(m / 60), m % 60);
  return t('day', Math.floor(m / 1440));
}
function clock(s) {
  const v = ms(s);
  if (isNaN(v)) return '';
  const d = new Date(v), now = new Date(), p = (x) => String(x).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  return d.toDateString() === now.toDateString() ? hm : `${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}
function sla(h) {
  const due = ms(h.due_at);
  if (isNaN(due)) return null;
  const left = due - Date.now();
  const state = left < 0 ? 'overdue' : left < SOON_MS ? 'due-soon' : 'on-time';
  const label = t(state === 'overdue' ? 'overdue' : state === 'due-soon' ? 'dueSoon' : 'onTime');
  const detail = left < 0 ? t('overdueBy', span(left)) : t('dueIn', span(left));
  return { state, label, detail };
}
const reasonText = (r) => { const k = 'r_' + String(r || '').toLowerCase(); return I18N.en[k] ? t(k) : String(r || ''); };
const queueText = (q) => (I18N.en['q_' + q] ? t('q_' + q) : q);
const sentiText = (l) => (I18N.en['s_' + l] ? t('s_' + l) : '');
const statusText = (h) => h.status === 'waiting' ? t('waiting') : h.status === 'resolved' ? t('resolved')
  : h.claimed_by === S.me ? t('claimedByMe') : t('claimedBy', h.claimed_by || '?');

// ---------- API and errors ----------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method, credentials: 'same-origin', cache: 'no-store',
      headers: body ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, String(e.message || e));
  }
  let data = {};
  try { data = await res.json(); } catch (e) { /* empty or not JSON */ }
  if (!res.ok) {
    const err = new ApiError(res.status, (data && data.error) || res.statusText);
    err.data = data;
    if (res.status === 401 && !path.startsWith('/api/session')) showSignIn(data);
    throw err;
  }
  return data;
}
function showError(text, retry) {
  $('#error-text').textContent = text;
  const b = $('#error-retry');
  b.hidden = !retry;
  b.onclick = retry ? () => { clearError(); retry(); } : null;
  $('#error-banner').hidden = false;
}
function clearError() { $('#error-banner').hidden = true; }
function fail(e, retry) {
  const s = e.status, msg = e.message || '';
  if (s === 401) return;
  if (s === 409 || s === 412) {
    const who = /claimed by\s+(\S+?)[,.;:]?(?:\s|$)/i.exec(msg) || /已被\s*([^\s，,。]+?)\s*(?:接手|认领)/.exec(msg);
    const text = who ? t('errClaimedWho', who[1]) : /not claimed|must be claimed/i.test(msg) ? t('errNotClaimed')
      : /resolved/i.test(msg) ? t('errResolved') : /claim/i.test(msg) ? t('errClaimed') : `${t('errClaimed')} (${msg})`;
    showError(text);
    refreshAll();
  } else if (s === 503) showError(t('err503'), retry);
  else if (s === 0) showError(t('errNetwork'), retry);
  else if (s === 400) showError(`${t('err400')}: ${msg}`);
  else if (s === 403) showError(t('err403'));
  else if (s === 404) showError(t('err404'));
  else showError(`${t('errGeneric')} (${s}): ${msg}`, retry);
}

// ---------- sign-in ----------
async function boot() {
  applyStatic();
  try {
    const me = await api('GET', '/api/me');
    if (me.sign_in_required === false) S.signInRequired = false;
    if (!me.name) return showSignIn(me);
    start(me);
  } catch (e) {
    if (e.status !== 401) { fail(e, boot); }
  }
}
function showSignIn(data) {
  if (S.es) { S.es.close(); S.es = null; }
  S.started = false;
  for (const s of ['#app', '#me', '#signout', '#live', '#help-button']) $(s).hidden = true;
  $('#signin-view').hidden = false;
  if (data && typeof data.sign_in_required === 'boolean') signInMode(data.sign_in_required);
  else {
    signInMode(S.signInRequired);
    // The 401 does not say whether tokens are configured: an empty sign-in answers 400 (names only) or 401 (tokens).
    api('POST', '/api/session', {}).catch((e) => { if (e.status === 400 || e.status === 401) signInMode(e.status === 401); });
  }
}
function signInMode(tokens) {
  S.signInRequired = tokens;
  $('#signin-token-row').hidden = !tokens;
  $('#signin-agent-row').hidden = tokens;
  $('#signin-hint').textContent = t(tokens ? 'signInHintToken' : 'signInHintAgent');
  (tokens ? $('#signin-token') : $('#signin-agent')).focus();
}
async function signIn(ev) {
  ev.preventDefault();
  const body = S.signInRequired ? { token: $('#signin-token').value.trim() } : { agent_id: $('#signin-agent').value.trim() };
  if (!body.token && !body.agent_id) return;
  $('#signin-submit').disabled = true;
  try {
    const me = await api('POST', '/api/session', body);
    $('#signin-token').value = '';
    $('#signin-error').hidden = true;
    start(me);
  } catch (e) {
    $('#signin-error').textContent = e.status === 401 ? t('badToken') : `${t('signInFailed')}: ${e.status === 0 ? t('errNetwork') : e.message}`;
    $('#signin-error').hidden = false;
  } finally { $('#signin-submit').disabled = false; }
}
async function signOut() {
  try { await api('POST', '/api/session/logout'); } catch (e) { /* signed out either way */ }
  S.me = null; S.handoffs.clear(); S.open = null; S.openId = null;
  showSignIn();
}
function start(me) {
  S.me = me.name;
  $('#signin-view').hidden = true; $('#app').hidden = false;
  $('#me').textContent = me.name;
  for (const s of ['#me', '#signout', '#live', '#help-button']) $(s).hidden = false;
  if (S.started) return;
  S.started = true;
  loadQueue();
  connectEvents();
  S.openId = null; // re-open whatever the URL names (also after signing in again)
  route();
}

// ---------- queue ----------
async function loadQueue() {
  try {
    const { handoffs } = await api('GET', '/api/handoffs');
    S.handoffs = new Map((handoffs || []).filter((h) => h.status !== 'resolved').map((h) => [h.handoff_id, h]));
    renderQueue();
  } catch (e) { fail(e, loadQueue); }
}
function refreshAll() { loadQueue(); if (S.openId) fetchOpen(); }
function ordered() {
  const groups = new Map();
  const qOf = (h) => h.queue || 'general';
  const known = [...QUEUES, ...[...S.handoffs.values()].map(qOf).filter((q) => !QUEUES.includes(q)).sort()];
  for (const q of known) groups.set(q, []);
  for (const h of S.handoffs.values()) groups.get(qOf(h)).push(h);
  const due = (h) => (isNaN(ms(h.due_at)) ? Infinity : ms(h.due_at));
  for (const list of groups.values()) {
    list.sort((a, b) => (a.priority - b.priority) || (due(a) - due(b)) || (ms(a.created_at) - ms(b.created_at)));
  }
  return [...groups].filter(([, l]) => l.length);
}
function renderQueue() {
  const box = $('#queue');
  const groups = ordered();
  box.replaceChildren(...groups.map(([q, list]) => el('section', { class: 'q-group', 'data-queue': q },
    el('h4', {}, el('span', { text: queueText(q) }), el('span', { class: 'count', text: String(list.length) })),
    list.map(queueItem))));
  const all = [...S.handoffs.values()];
  const waiting = all.filter((h) => h.status === 'waiting').length;
  const mine = all.filter((h) => h.status === 'claimed' && h.claimed_by === S.me).length;
  $('#empty-queue').hidden = waiting > 0;
  $('#counts').replaceChildren(el('span', { class: 'count-waiting', text: t('waitingN', waiting) }),
    el('span', { text: t('mineN', mine) }));
  document.title = `${waiting ? `(${waiting}) ` : ''}${t('appName')}`;
}
function queueItem(h) {
  const s = sla(h), lang = h.language === 'zh' ? '中' : 'EN';
  const mine = h.status === 'claimed' && h.claimed_by === S.me;
  return el('div', {
    class: `queue-item${h.handoff_id === S.openId ? ' active' : ''} st-${h.status}${mine ? ' mine' : ''}`,
    'data-handoff-id': h.handoff_id, tabindex: '0', onclick: () => go(h.handoff_id),
    onkeydown: (e) => { if (e.key === 'Enter') go(h.handoff_id); },
  },
  el('div', { class: 'qi-top' },
    el('span', { class: `prio p${h.priority}`, text: `P${h.priority}` }),
    el('span', { class: 'reason', text: reasonText(h.reason) }),
    el('span', { class: 'spacer' }),
    s && el('span', { class: `sla ${s.state}`, title: `${s.detail} · ${clock(h.due_at)}`, text: s.label })),
  el('div', { class: 'qi-summary', title: h.summary, text: h.summary }),
  el('div', { class: 'qi-meta' },
    el('span', { class: 'lang', title: t('lang_' + h.language), text: lang }),
    el('span', { class: 'wait', title: clock(h.created_at), text: span(Date.now() - ms(h.created_at)) }),
    el('span', { class: 'spacer' }),
    el('span', { class: `status ${h.status}`, text: statusText(h) })));
}

// ---------- routing and the open handoff ----------
function go(id) { location.hash = `#/handoff/${encodeURIComponent(id)}`; }
function route() {
  const m = /^#\/handoff\/(.+)$/.exec(location.hash);
  const id = m ? decodeURIComponent(m[1]) : null;
  if (id === S.openId) return;
  saveDraft();
  S.openId = id; S.open = id ? S.handoffs.get(id) || null : null;
  $('#resolve-form').hidden = true;
  const d = id && S.drafts.get(id);
  $('#reply-text').value = d ? d.text : '';
  clearError();
  renderHandoff(true);
  renderQueue();
  const item = id && document.querySelector(`.queue-item[data-handoff-id="${CSS.escape(id)}"]`);
  if (item) item.scrollIntoView({ block: 'nearest' });
  if (id) fetchOpen();
}
async function fetchOpen() {
  const id = S.openId, seq = ++S.fetchSeq;
  try {
    const h = await api('GET', `/api/handoffs/${encodeURIComponent(id)}`);
    if (seq !== S.fetchSeq || id !== S.openId) return;
    S.open = h;
    if (h.status !== 'resolved' && S.handoffs.has(id)) { S.handoffs.set(id, h); renderQueue(); }
    renderHandoff(false);
  } catch (e) { if (id === S.openId) fail(e, fetchOpen); }
}
function draft(id) {
  if (!S.drafts.has(id)) S.drafts.set(id, { text: '', cmid: null, cmidText: null, suggestion: '' });
  return S.drafts.get(id);
}
function saveDraft() { if (S.openId) draft(S.openId).text = $('#reply-text').value; }

function renderHandoff(switched) {
  const h = S.open, pane = $('#handoff');
  pane.dataset.handoffId = h ? h.handoff_id : (S.openId || '');
  pane.dataset.status = h ? h.status : '';
  $('#handoff-none').hidden = !!S.openId;
  $('#handoff-body').hidden = !S.openId;
  renderHead(h);
  if (!h) { for (const s of ['#transcript', '#suggestions', '#entities', '#sentiment', '#articles']) $(s).replaceChildren(); return; }
  renderTranscript(h, switched);
  renderSide(h);
  renderComposer(h);
}
function renderHead(h) {
  const mine = !!h && h.status === 'claimed' && h.claimed_by === S.me;
  $('#claim').hidden = !h || h.status !== 'waiting';
  $('#resolve').hidden = !mine;
  if (!mine) $('#resolve-form').hidden = true;
  if (!h) { $('#hd-tags').replaceChildren(); $('#hd-summary').textContent = ''; $('#hd-owner').textContent = ''; return; }
  const s = sla(h);
  fill($('#hd-tags'),
    el('span', { class: `prio p${h.priority}`, text: `P${h.priority}` }),
    el('span', { class: 'tag reason', text: reasonText(h.reason) }),
    el('span', { class: 'tag', text: queueText(h.queue) }),
    el('span', { class: 'tag', text: t('lang_' + h.language) }),
    s && h.status !== 'resolved' && el('span', { class: `sla ${s.state}`, title: clock(h.due_at), text: s.state === 'overdue' ? s.detail : `${s.label} · ${s.detail}` }),
    el('span', { class: 'muted', text: `${t('createdAt', clock(h.created_at))} · ${t('waited', span(Date.now() - ms(h.created_at)))}` }),
    el('span', { class: 'muted id', text: h.handoff_id }));
  $('#hd-summary').textContent = h.summary;
  $('#hd-owner').textContent = h.status === 'claimed' ? statusText(h) : h.status === 'resolved' ? t('resolved') : '';
  $('#hd-owner').className = `owner ${mine ? 'mine' : h.status}`;
}
function renderComposer(h) {
  const mine = h.status === 'claimed' && h.claimed_by === S.me;
  const reply = $('#reply-text'), d = draft(h.handoff_id);
  reply.disabled = h.status === 'resolved';
  reply.placeholder = mine ? t(h.language === 'zh' ? 'replyZh' : 'replyEn') : h.status === 'resolved' ? '' : t('draftHere');
  $('#send').disabled = !mine || S.sending;
  $('#composer-note').textContent = h.status === 'resolved' ? t('closedNote', h.resolution || '—')
    : h.status === 'claimed' && !mine ? t('otherWorking', h.claimed_by) : h.status === 'waiting' ? t('claimFirst')
      : d.suggestion ? '✓ ' + t('fromSuggestion') : '';
}
const MASK = /\[[^\]\n]{1,20}(?:已隐藏| hidden)\]|[\w.+@-]*\*{2,}[\w.@-]*/g;
function masked(text) {
  const out = [];
  let last = 0;
  for (const m of String(text).matchAll(MASK)) {
    out.push(text.slice(last, m.index), el('span', { class: 'mask', text: m[0] }));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}
function renderTranscript(h, switched) {
  const box = $('#transcript');
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  box.replaceChildren(...(h.transcript || []).map((tr) => {
    const role = ['customer', 'bot', 'agent'].includes(tr.role) ? tr.role : 'bot';
    const who = role === 'agent' ? `${t('role_agent')} ${tr.agent_id || ''}${tr.agent_id === S.me ? ` (${t('me')})` : ''}` : t('role_' + role);
    const senti = role === 'customer' && tr.sentiment && tr.sentiment.label;
    return el('div', { class: 'turn', 'data-role': role, 'data-turn-id': tr.turn_id },
      el('div', { class: 'turn-meta' }, el('span', { class: 'who', text: who }), el('span', { text: clock(tr.at), title: tr.at }),
        senti && senti !== 'neutral' && sentiText(senti) && el('span', { class: `senti ${senti}`, text: sentiText(senti) })),
      el('div', { class: 'bubble' }, masked(tr.text || '')));
  }));
  if (switched || atEnd) box.scrollTop = box.scrollHeight;
}
function renderSide(h) {
  const d = draft(h.handoff_id);
  const sugg = h.suggested_replies || [];
  $('#suggestions').replaceChildren(...(sugg.length ? sugg.map((s, i) => el('div', { class: `suggestion${d.suggestion === s.text ? ' used' : ''}` },
    el('div', { class: 'sg-text', text: s.text }),
    el('div', { class: 'sg-bar' },
      el('kbd', { text: String(i + 1) }),
      s.article_id && el('a', { href: '#', class: 'small', text: t('source'), onclick: (e) => { e.preventDefault(); openArticle(s.article_id); } }),
      typeof s.score === 'number' && el('span', { class: 'muted small', text: `${Math.round(s.score * 100)}%` }),
      el('span', { class: 'spacer' }),
      el('button', { type: 'button', class: 'suggestion-insert', text: d.suggestion === s.text ? t('inserted') : t('insert'),
        disabled: h.status === 'resolved', onclick: () => insertSuggestion(s.text) }))))
    : [el('div', { class: 'muted', text: t('noSuggestions') })]));

  const ents = Object.entries(h.entities || {}).filter(([, v]) => v);
  $('#entities').replaceChildren(...(ents.length ? ents.map(([k, v]) => el('button', {
    type: 'button', class: 'chip', title: t('clickCopy'), 'data-entity': k,
    onclick: (e) => copy(v, e.currentTarget),
  }, el('span', { class: 'chip-k', text: I18N.en[k] ? t(k) : k }), el('span', { class: 'chip-v', text: v })))
    : [el('div', { class: 'muted', text: t('none') })]));

  $('#sentiment').replaceChildren(sparkline(h));
  const arts = h.kb_articles_tried || [];
  $('#articles').replaceChildren(...(arts.length ? arts.map((a) => el('a', {
    href: '#', class: 'article-link', text: a.title || a.id, onclick: (e) => { e.preventDefault(); openArticle(a.id); },
  })) : [el('div', { class: 'muted', text: t('noArticles') })]));
}
function sparkline(h) {
  const turns = (h.transcript || []).filter((x) => x.role === 'customer' && x.sentiment);
  if (!turns.length) return el('div', { class: 'muted', text: t('none') });
  const W = 200, H = 44, pad = 5, n = turns.length;
  const xy = turns.map((x, i) => [pad + (n === 1 ? (W - 2 * pad) / 2 : i * (W - 2 * pad) / (n - 1)),
    H - pad - Math.max(0, Math.min(1, x.sentiment.score || 0)) * (H - 2 * pad)]);
  const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img' });
  const y70 = H - pad - 0.7 * (H - 2 * pad);
  svg.append(svgEl('line', { x1: 0, x2: W, y1: y70, y2: y70, class: 'spark-limit' }));
  const pts = xy.map((p) => p.map((v) => v.toFixed(1)).join(',')).join(' ');
  if (n > 1) svg.append(svgEl('polyline', { points: pts, class: 'spark-line' }));
  xy.forEach(([x, y], i) => svg.append(svgEl('circle', {
    cx: x, cy: y, r: i === n - 1 ? 3.5 : 2, class: `spark-dot ${turns[i].sentiment.label || ''}`,
  })));
  const last = turns[n - 1].sentiment;
  return el('div', { class: 'spark-box', title: turns.map((x) => (x.sentiment.score || 0).toFixed(2)).join(' → ') }, svg,
    el('div', { class: `spark-label senti ${last.label}`, text: t('lastSentiment', sentiText(last.label) || '—', (last.score || 0).toFixed(2)) }));
}
async function copy(text, node) {
  try { await navigator.clipboard.writeText(text); } catch (e) {
    const r = document.createRange(); r.selectNodeContents(node); getSelection().removeAllRanges(); getSelection().addRange(r);
    return;
  }
  node.classList.add('copied');
  setTimeout(() => node.classList.remove('copied'), 900);
}
async function openArticle(id) {
  const lang = (S.open && S.open.language) || S.lang;
  try {
    const a = await api('GET', `/api/articles/${encodeURIComponent(id)}?lang=${lang}`);
    $('#article-title').textContent = a.title;
    $('#article-body').textContent = a.body;
    $('#article-dialog').showModal();
  } catch (e) { fail(e, () => openArticle(id)); }
}

// ---------- actions ----------
function insertSuggestion(text) {
  const h = S.open;
  if (!h || h.status === 'resolved') return;
  const box = $('#reply-text'), d = draft(h.handoff_id);
  box.value = text;
  d.suggestion = text; d.text = text;
  renderSide(h); renderComposer(h);
  box.focus();
  box.setSelectionRange(text.length, text.length);
}
async function claim() {
  const h = S.open;
  if (!h || h.status !== 'waiting') return;
  const id = h.handoff_id;
  $('#claim').disabled = true;
  try {
    const nh = await api('POST', `/api/handoffs/${encodeURIComponent(id)}/claim`);
    clearError();
    if (S.handoffs.has(id)) S.handoffs.set(id, nh);
    if (S.openId === id) { S.open = nh; renderHandoff(false); $('#reply-text').focus(); }
    renderQueue();
  } catch (e) { fail(e, claim); } finally { $('#claim').disabled = false; }
}
async function send() {
  const h = S.open, box = $('#reply-text');
  const text = box.value.trim();
  if (!h || !text || S.sending) return;
  if (h.status !== 'claimed' || h.claimed_by !== S.me) { showError(h.status === 'waiting' ? t('errNotClaimed') : t('errClaimed')); return; }
  const id = h.handoff_id, d = draft(id);
  if (!d.cmid || d.cmidText !== text) { d.cmid = uuid(); d.cmidText = text; } // one id per composed message
  const body = { text, suggestion_text: d.suggestion || '', client_message_id: d.cmid };
  const attempt = async () => {
    S.sending = true; $('#send').disabled = true;
    try {
      const turn = await api('POST', `/api/handoffs/${encodeURIComponent(id)}/messages`, body);
      clearError();
      const cur = S.drafts.get(id);
      if (cur && cur.cmid === body.client_message_id) S.drafts.delete(id);
      if (S.openId === id) {
        if (box.value.trim() === text) box.value = '';
        if (S.open && turn && turn.turn_id && !S.open.transcript.some((x) => x.turn_id === turn.turn_id)) {
          S.open.transcript.push(turn);
        }
      }
    } catch (e) { fail(e, attempt); } finally {
      S.sending = false;
      if (S.openId === id && S.open) { renderTranscript(S.open, false); renderComposer(S.open); }
    }
  };
  await attempt();
}
function toggleResolve(show) {
  const h = S.open;
  if (!h || h.status !== 'claimed' || h.claimed_by !== S.me) return;
  $('#resolve-form').hidden = !show;
  if (show) $('#resolution-text').focus();
}
async function resolve(ev) {
  if (ev) ev.preventDefault();
  const h = S.open, text = $('#resolution-text').value.trim();
  if (!h) return;
  if (!text) { showError(t('needText')); $('#resolution-text').focus(); return; }
  const id = h.handoff_id, body = { resolution: text };
  const attempt = async () => {
    $('#resolution-submit').disabled = true;
    try {
      const nh = await api('POST', `/api/handoffs/${encodeURIComponent(id)}/resolve`, body);
      clearError();
      $('#resolution-text').value = ''; $('#resolve-form').hidden = true;
      S.handoffs.delete(id); S.drafts.delete(id);
      if (S.openId === id) { S.open = nh; renderHandoff(false); }
      renderQueue();
    } catch (e) { fail(e, attempt); } finally { $('#resolution-submit').disabled = false; }
  };
  await attempt();
}

// ---------- live events ----------
function connectEvents() {
  if (S.es) S.es.close();
  const es = new EventSource('/api/events');
  S.es = es;
  setLive(false);
  es.onopen = () => setLive(true);
  es.addEventListener('handoff', (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    const h = msg && msg.handoff;
    if (!h || !h.handoff_id) return;
    const id = h.handoff_id;
    if (h.status === 'resolved' || msg.kind === 'resolved') S.handoffs.delete(id);
    else S.handoffs.set(id, Object.assign({}, S.handoffs.get(id), h));
    renderQueue();
    if (id === S.openId) fetchOpen();
  });
  es.addEventListener('resync', () => refreshAll());
  es.onerror = () => {
    setLive(false);
    if (es.readyState === EventSource.CLOSED && S.es === es) {
      // The browser gives up on HTTP errors; check the session, then reconnect and re-read everything.
      S.es = null;
      setTimeout(async () => {
        if (!S.started) return;
        try { await api('GET', '/api/me'); } catch (e) { if (e.status === 401) return; }
        if (S.started && !S.es) { connectEvents(); refreshAll(); }
      }, 3000);
    }
  };
}
function setLive(on) {
  $('#live').dataset.state = on ? 'on' : 'off';
  $('#live-text').textContent = on ? t('live') : t('reconnecting');
}

// ---------- keyboard, language, static text ----------
const HELP = [['j  n', 'h_next'], ['k  p', 'h_prev'], ['c', 'h_claim'], ['r', 'h_resolve'], ['/', 'h_focus'],
  ['Ctrl+Enter  ⌘+Enter', 'h_send'], ['1  2  3', 'h_insert'], ['?', 'h_help'], ['Esc', 'h_esc']];
function move(step) {
  const ids = [...document.querySelectorAll('#queue .queue-item')].map((n) => n.dataset.handoffId);
  if (!ids.length) return;
  const i = ids.indexOf(S.openId);
  const next = i < 0 ? (step > 0 ? 0 : ids.length - 1) : Math.max(0, Math.min(ids.length - 1, i + step));
  go(ids[next]);
}
function onKey(e) {
  const typing = e.target.closest && e.target.closest('input, textarea, select, [contenteditable="true"]');
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    if (e.target.id === 'resolution-text') resolve();
    else if (!$('#app').hidden) send();
    return;
  }
  if (e.key === 'Escape' && typing) { e.target.blur(); return; }
  if (typing || e.ctrlKey || e.metaKey || e.altKey || $('#app').hidden) return;
  if (document.querySelector('dialog[open]') && e.key !== '?') return;
  const actions = {
    j: () => move(1), n: () => move(1), k: () => move(-1), p: () => move(-1), c: claim, r: () => toggleResolve(true),
    '/': () => $('#reply-text').focus(), '?': toggleHelp,
    1: () => pickSuggestion(0), 2: () => pickSuggestion(1), 3: () => pickSuggestion(2),
  };
  const f = actions[e.key];
  if (f) { e.preventDefault(); f(); }
}
function pickSuggestion(i) {
  const s = S.open && (S.open.suggested_replies || [])[i];
  if (s) insertSuggestion(s.text);
}
function toggleHelp() {
  const d = $('#help-dialog');
  if (d.open) { d.close(); return; }
  $('#help-table').replaceChildren(...HELP.map(([k, key]) => el('tr', {},
    el('td', {}, k.split('  ').map((x) => el('kbd', { text: x }))), el('td', { text: t(key) }))));
  d.showModal();
}
function applyStatic() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  for (const n of document.querySelectorAll('[data-i18n]')) n.textContent = t(n.dataset.i18n);
  for (const n of document.querySelectorAll('[data-i18n-ph]')) n.placeholder = t(n.dataset.i18nPh);
  for (const n of document.querySelectorAll('[data-i18n-title]')) n.title = t(n.dataset.i18nTitle);
  $('#lang-toggle').textContent = S.lang === 'zh' ? 'EN' : '中文';
  $('#lang-toggle').title = S.lang === 'zh' ? 'Switch to English' : '切换到中文';
  $('#signin-hint').textContent = t(S.signInRequired ? 'signInHintToken' : 'signInHintAgent');
  if (S.es) setLive($('#live').dataset.state === 'on');
}
function setLang(lang) {
  S.lang = lang;
  localStorage.setItem('xiaoer.console.lang', lang);
  applyStatic();
  renderQueue();
  renderHandoff(false);
}

function wire() {
  $('#signin-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#lang-toggle').addEventListener('click', () => setLang(S.lang === 'zh' ? 'en' : 'zh'));
  $('#help-button').addEventListener('click', toggleHelp);
  $('#help-close').addEventListener('click', () => $('#help-dialog').close());
  $('#article-close').addEventListener('click', () => $('#article-dialog').close());
  $('#error-close').addEventListener('click', clearError);
  $('#claim').addEventListener('click', claim);
  $('#resolve').addEventListener('click', () => toggleResolve($('#resolve-form').hidden));
  $('#resolution-cancel').addEventListener('click', () => { $('#resolve-form').hidden = true; });
  $('#resolve-form').addEventListener('submit', resolve);
  $('#send').addEventListener('click', send);
  $('#reply-text').addEventListener('input', (e) => {
    if (!S.openId) return;
    const d = draft(S.openId);
    d.text = e.target.value;
    if (!e.target.value.trim() && d.suggestion) { d.suggestion = ''; if (S.open) { renderSide(S.open); renderComposer(S.open); } }
  });
  document.addEventListener('keydown', onKey);
  window.addEventListener('hashchange', route);
  setInterval(() => { if (S.started) { renderQueue(); renderHead(S.open); } }, 15000);
}
wire();
boot();
