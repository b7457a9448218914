// ivrgate's test SMSC: an SMPP server on the npm package smpp (0.5.1), driven over a small HTTP control port.
//
// Env:   PORT (SMPP, 2775), CONTROL_PORT (HTTP, 0 = none), SYSTEM_ID / PASSWORD (test / test),
//        RECORD (JSON-lines file: one line per accepted submit_sm, appended before the response is sent,
//        so it survives a kill -9 and a restart appends to it; receipts not yet acknowledged are kept in
//        RECORD.receipts and forwarded again after a restart), NODELAY=1, QUIET=1.
// HTTP:  GET /state             counters, the accepted and held submits, the deliver_sm answers, the
//                               modes of the bound sessions
//        POST /config {...}     switches: dlr, dlr_state, dlr_err, dlr_tlv, dlr_delay_ms, throttle_every,
//                               throttle_next, refuse_next, refuse_status, drop_after, hold, record,
//                               id_form ("base36" | "hex" | "decimal": submit_sm_resp message_id, the
//                               numeric ones 12 characters with leading zeros),
//                               dlr_id_form ("same" | "decimal" | "hex" | "unpadded" | "lower" | "upper":
//                               the id the receipt's text names; the TLV always carries the response's),
//                               dlr_plan (a list of lists of states: each accepted submit takes the next
//                               list and gets one receipt per state, in that order; empty: dlr_state),
//                               resp_delay_ms (every submit_sm_resp and throttling answer sent this late),
//                               dlr_hold (true: receipts are kept, not sent; false again sends those kept)
//        POST /mo {source, destination, text, coding: "gsm"|"ucs2", parts, concat: "udh"|"sar", ref,
//                  source_ton, dest_ton, only}
//                               sends an MO message as deliver_sm, split by this script into `parts`;
//                               the TONs default to 1 for a '+' address, else 0; `only` (1-based part
//                               numbers) sends just those parts (the rest in a later call)
//        POST /reset            clears counters and records (not the RECORD file)
'use strict';
const smpp = require('smpp');
const {PDU} = require('smpp/lib/pdu');
const fs = require('fs');
const http = require('http');

const PORT = +(process.env.PORT || 2775);
const CONTROL_PORT = +(process.env.CONTROL_PORT || 0);
const SYSTEM_ID = process.env.SYSTEM_ID || 'test';
const PASSWORD = process.env.PASSWORD || 'test';
const RECORD = process.env.RECORD || '';
const NODELAY = process.env.NODELAY === '1';
const QUIET = process.env.QUIET === '1';
// message ids differ between runs, so a restarted SMSC never reuses one
const ID_PREFIX = (Date.now() % 1e9).toString(36) + process.pid.toString(36);

const config = {dlr: true, dlr_state: 'DELIVRD', dlr_err: '000', dlr_tlv: true, dlr_delay_ms: 0,
                throttle_every: 0, throttle_next: 0, drop_after: 0, hold: false, record: true,
                refuse_next: 0, refuse_status: 0x45, id_form: 'base36', dlr_id_form: 'same', dlr_plan: [],
                resp_delay_ms: 0, dlr_hold: false};
let stats, submits, held, delivers, counter = 0;
const heldReceipts = [];  // [session, key] of receipts kept while dlr_hold
const sessions = new Set();

function reset() {
  stats = {binds: 0, bind_failures: 0, sessions: 0, received: 0, accepted: 0, throttled: 0, refused: 0, dropped: 0,
           held: 0, dlr_sent: 0, mo_sent: 0, deliver_ok: 0, deliver_error: 0, enquire_links: 0, unbinds: 0};
  submits = []; held = []; delivers = [];
}
reset();

function log(...a) { if (!QUIET) console.log(new Date().toISOString(), ...a); }

// keep each PDU's raw bytes, so the exact short_message octets can be recorded
const fromBuffer = PDU.prototype.fromBuffer;
PDU.prototype.fromBuffer = function (buffer) {
  this._rawCopy = Buffer.from(buffer);
  return fromBuffer.call(this, buffer);
};

// the short_message octets and the validity_period text of a raw submit_sm / deliver_sm
function rawFields(buf) {
  let at = 16;
  const cstr = () => { const start = at; while (buf[at] !== 0) at++; at++; return buf.toString('latin1', start, at - 1); };
  cstr(); at += 2; cstr(); at += 2; cstr(); at += 3; cstr();
  const validity = cstr();
  at += 4;
  const len = buf[at];
  return {shortMessage: buf.slice(at + 1, at + 1 + len), validity};
}

function ts(d) {
  const p = n => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) +
         p(d.getUTCMinutes()) + p(d.getUTCSeconds());
}

function describe(pdu, session) {
  const sm = pdu.short_message || {};
  const fields = pdu._rawCopy ? rawFields(pdu._rawCopy) : {shortMessage: Buffer.alloc(0), validity: ''};
  const raw = fields.shortMessage;
  let text = typeof sm === 'string' ? sm : sm.message;
  if (Buffer.isBuffer(text)) text = text.toString('latin1');
  let payload = null;
  if (pdu.message_payload !== undefined) {
    const mp = pdu.message_payload;
    payload = (mp && mp.message !== undefined) ? String(mp.message) : String(mp);
  }
  return {seq: pdu.sequence_number, session: session.id, source: pdu.source_addr,
          source_ton: pdu.source_addr_ton, source_npi: pdu.source_addr_npi, destination: pdu.destination_addr,
          dest_ton: pdu.dest_addr_ton, dest_npi: pdu.dest_addr_npi, esm_class: pdu.esm_class,
          data_coding: pdu.data_coding, registered_delivery: pdu.registered_delivery,
          validity_period: fields.validity,
          sm_hex: raw.toString('hex'), udh_hex: (sm.udh || []).map(b => b.toString('hex')).join(''),
          text: text === undefined ? null : text, payload,
          sar: pdu.sar_msg_ref_num === undefined ? null :
            [pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum]};
}

const STATES = {ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};

function receiverFor(session) {
  if (session.mode !== 'transmitter' && !session.socket.destroyed) return session;
  for (const s of sessions) if (s.mode && s.mode !== 'transmitter' && !s.socket.destroyed) return s;
  return null;
}

function sendDeliver(session, fields, what, acknowledged) {
  session.deliver_sm(fields, resp => {
    delivers.push({what, status: resp.command_status});
    if (resp.command_status === 0) stats.deliver_ok++; else stats.deliver_error++;
    if (resp.command_status === 0 && acknowledged) acknowledged();
  });
}

// Receipts are stored and forwarded, as an SMSC does: each one is kept (in RECORD + '.receipts' when
// RECORD is set, so a kill -9 does not lose it) until the ESME acknowledges its deliver_sm, and is sent
// again to the next receiving session after a lost connection or a restart.
const RECEIPTS = RECORD ? RECORD + '.receipts' : '';
const pendingReceipts = new Map();  // message id -> {fields, session: id of the session it went out on}

function noteReceipt(op, id, fields) {
  if (RECEIPTS) fs.appendFileSync(RECEIPTS, JSON.stringify({op, id, fields}) + '\n');
}

function loadReceipts() {
  if (!RECEIPTS || !fs.existsSync(RECEIPTS)) return;
  for (const line of fs.readFileSync(RECEIPTS, 'utf8').split('\n')) {
    if (!line) continue;
    const entry = JSON.parse(line);
    if (entry.op === 'add') pendingReceipts.set(entry.id, {fields: entry.fields, session: 0});
    else pendingReceipts.delete(entry.id);
  }
}

function forwardReceipt(target, id) {
  const pending = pendingReceipts.get(id);
  if (!pending) return;
  pending.session = target.id;
  sendDeliver(target, pending.fields, 'receipt:' + id, () => {
    if (pendingReceipts.delete(id)) noteReceipt('ack', id);
  });
  stats.dlr_sent++;
}

function forwardStoredReceipts(target) {
  const live = new Set([...sessions].filter(s => !s.socket.destroyed).map(s => s.id));
  for (const [id, pending] of pendingReceipts) if (!live.has(pending.session)) forwardReceipt(target, id);
}

let idBase = (Date.now() % 1e6) * 1e4;  // numeric ids differ between runs too

function newMessageId() {
  counter++;
  if (config.id_form === 'hex') return (idBase + counter).toString(16).toUpperCase().padStart(12, '0');
  if (config.id_form === 'decimal') return String(idBase + counter).padStart(12, '0');
  return ID_PREFIX + counter.toString(36).padStart(6, '0');
}

// the id as the receipt's text writes it (an SMSC whose receipts and responses disagree on the form)
function receiptId(id) {
  switch (config.dlr_id_form) {
    case 'decimal': return String(parseInt(id, 16));
    case 'hex': return parseInt(id, 10).toString(16);
    case 'unpadded': return id.replace(/^0+(?=.)/, '');
    case 'lower': return id.toLowerCase();
    case 'upper': return id.toUpperCase();
    default: return id;
  }
}

function sendReceipt(session, pdu, id, text, state, key) {
  const now = new Date();
  const body = `id:${receiptId(id)} sub:001 dlvrd:${state === 'DELIVRD' ? '001' : '000'} ` +
    `submit date:${ts(now)} done date:${ts(now)} stat:${state} err:${config.dlr_err} ` +
    `text:${String(text || '').replace(/[^\x20-\x7e]/g, '?').substr(0, 20)}`;
  const fields = {source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
                  esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT, data_coding: 0, short_message: body};
  if (config.dlr_tlv) {
    fields.receipted_message_id = id;
    fields.message_state = STATES[state] || 7;
  }
  pendingReceipts.set(key, {fields, session: 0});
  noteReceipt('add', key, fields);
  const send = () => {
    if (config.dlr_hold) { heldReceipts.push([session, key]); return; }
    const target = receiverFor(session);
    if (target) forwardReceipt(target, key);  // else the next receiving session gets it on its bind
  };
  if (config.dlr_delay_ms) setTimeout(send, config.dlr_delay_ms); else setImmediate(send);
}

function sendReceipts(session, pdu, id, text) {
  const plan = config.dlr_plan.length ? config.dlr_plan.shift() : [config.dlr_state];
  // one after another, so they reach the ESME in the planned order
  plan.forEach((state, n) => sendReceipt(session, pdu, id, text, state, n ? `${id}#${n}` : id));
}

function onSubmit(session, pdu) {
  // node-smpp keeps parsing what it had read after a destroy(): a dead connection takes nothing more
  if (session.socket.destroyed || session.dropped) return;
  stats.received++;
  if (config.throttle_next > 0 || (config.throttle_every && stats.received % config.throttle_every === 0)) {
    if (config.throttle_next > 0) config.throttle_next--;
    stats.throttled++;
    respond(session, pdu.response({command_status: smpp.ESME_RTHROTTLED}));
    return;
  }
  if (config.refuse_next > 0) {
    config.refuse_next--;
    stats.refused++;
    session.send(pdu.response({command_status: config.refuse_status}));
    return;
  }
  if (config.drop_after && --config.drop_after === 0) {
    stats.dropped++;
    log('dropping the connection at submit', stats.received, '(no response)');
    // answers already given reach the ESME first (an answer lost in flight would make the ESME's
    // resubmission a real duplicate: SMPP cannot tell); then the connection ends without an unbind
    session.dropped = true;
    session.socket.end(() => session.socket.destroy());
    return;
  }
  if (config.hold) {
    stats.held++;
    if (config.record) held.push(describe(pdu, session));
    return;
  }
  const id = newMessageId();
  stats.accepted++;
  if (config.record) {
    const entry = describe(pdu, session);
    entry.id = id;
    submits.push(entry);
    if (RECORD) fs.appendFileSync(RECORD, JSON.stringify(entry) + '\n');
  }
  const receipts = () => {
    if (config.dlr && (pdu.registered_delivery & 1)) {
      const sm = pdu.short_message || {};
      sendReceipts(session, pdu, id, typeof sm === 'string' ? sm : sm.message);
    }
  };
  if (config.resp_delay_ms) {
    setTimeout(() => { if (!session.socket.destroyed) { session.send(pdu.response({message_id: id})); receipts(); } },
               config.resp_delay_ms);
    return;
  }
  session.send(pdu.response({message_id: id}));
  receipts();
}

// a slow SMSC answers late (the ESME must not take the wait for a lost submit)
function respond(session, response) {
  if (!config.resp_delay_ms) { session.send(response); return; }
  setTimeout(() => { if (!session.socket.destroyed) session.send(response); }, config.resp_delay_ms);
}

let sessionIds = 0;
const server = smpp.createServer({debug: false}, session => {
  session.id = ++sessionIds;
  stats.sessions++;
  sessions.add(session);
  if (NODELAY) session.socket.setNoDelay(true);
  const bind = mode => pdu => {
    stats.binds++;
    if (pdu.system_id !== SYSTEM_ID || pdu.password !== PASSWORD) {
      stats.bind_failures++;
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      session.close();
      return;
    }
    session.mode = mode;
    session.send(pdu.response({system_id: 'IVRGATE-TEST-SMSC'}));
    log('bound', mode, 'session', session.id);
    if (mode !== 'transmitter') setImmediate(() => forwardStoredReceipts(session));
  };
  session.on('bind_transceiver', bind('transceiver'));
  session.on('bind_transmitter', bind('transmitter'));
  session.on('bind_receiver', bind('receiver'));
  session.on('enquire_link', pdu => { stats.enquire_links++; session.send(pdu.response()); });
  session.on('unbind', pdu => { stats.unbinds++; session.send(pdu.response()); session.close(); });
  session.on('submit_sm', pdu => onSubmit(session, pdu));
  session.on('error', e => log('session error', e.message));
  session.on('close', () => { sessions.delete(session); log('session', session.id, 'closed'); });
});

function splitText(text, parts) {
  const chars = Array.from(text);
  const size = Math.ceil(chars.length / parts);
  const out = [];
  for (let i = 0; i < parts; i++) out.push(chars.slice(i * size, (i + 1) * size).join(''));
  return out;
}

function sendMo(req) {
  const target = receiverFor({mode: 'transmitter'});
  if (!target) return {sent: 0, error: 'no receiver bound'};
  const parts = splitText(req.text, req.parts || 1);
  const ref = req.ref === undefined ? 42 : req.ref;
  const dc = req.coding === 'ucs2' ? 8 : 0;
  const ton = (given, address) => given === undefined ? (address.startsWith('+') ? 1 : 0) : given;
  let sent = 0;
  parts.forEach((chunk, i) => {
    if (req.only && !req.only.includes(i + 1)) return;
    const fields = {source_addr: req.source.replace(/^\+/, ''), destination_addr: req.destination.replace(/^\+/, ''),
                    source_addr_ton: ton(req.source_ton, req.source), source_addr_npi: 1,
                    dest_addr_ton: ton(req.dest_ton, req.destination), dest_addr_npi: 1,
                    data_coding: dc, esm_class: 0};
    if (parts.length === 1) fields.short_message = chunk;
    else if (req.concat === 'sar') {
      Object.assign(fields, {short_message: chunk, sar_msg_ref_num: ref, sar_total_segments: parts.length,
                             sar_segment_seqnum: i + 1});
    } else {
      fields.short_message = {udh: Buffer.from([5, 0, 3, ref & 0xff, parts.length, i + 1]), message: chunk};
    }
    sendDeliver(target, fields, 'mo');
    stats.mo_sent++;
    sent++;
  });
  return {sent};
}

function control(req, res) {
  let body = '';
  req.on('data', c => { body += c; });
  req.on('end', () => {
    let answer;
    try {
      const input = body ? JSON.parse(body) : {};
      if (req.method === 'GET' && req.url === '/state') {
        const bound = [...sessions].filter(s => s.mode && !s.socket.destroyed).map(s => s.mode);
        answer = {stats, config, submits, held, delivers, sessions: sessions.size, bound, id_prefix: ID_PREFIX};
      } else if (req.method === 'POST' && req.url === '/config') {
        const unknown = Object.keys(input).filter(key => !(key in config));
        if (unknown.length) throw new Error('unknown switches: ' + unknown.join(', '));
        Object.assign(config, input);
        if (!config.dlr_hold) {
          for (const [session, key] of heldReceipts.splice(0)) {
            const target = receiverFor(session);
            if (target) forwardReceipt(target, key);
          }
        }
        answer = config;
      } else if (req.method === 'POST' && req.url === '/mo') {
        answer = sendMo(input);
      } else if (req.method === 'POST' && req.url === '/reset') {
        reset();
        for (const id of pendingReceipts.keys()) noteReceipt('ack', id);
        pendingReceipts.clear();
        answer = {ok: true};
      } else {
        res.writeHead(404);
        res.end();
        return;
      }
    } catch (e) {
      res.writeHead(400, {'content-type': 'application/json'});
      res.end(JSON.stringify({error: e.message}));
      return;
    }
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify(answer));
  });
}

loadReceipts();
server.listen(PORT, '127.0.0.1', () => {
  if (CONTROL_PORT) {
    http.createServer(control).listen(CONTROL_PORT, '127.0.0.1', () => {
      console.log(`ready smpp=${PORT} control=${CONTROL_PORT}`);
    });
  } else {
    console.log(`ready smpp=${PORT}`);
  }
});
process.on('SIGTERM', () => process.exit(0));
