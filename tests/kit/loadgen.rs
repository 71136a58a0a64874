//! The load generator: deterministic, realistic support mail over the three mailboxes (new requests, threaded follow-ups, Japanese and Spanish mail, attachments, bounces, auto-replies) with a manifest of what ticketd should do with each.
//!
//! The same options give the same bytes on every machine and every version
//! of the dependencies: the randomness is a SplitMix64 of its own, and the
//! dates come from the options, never from the clock. `gen-corpus` (an
//! example) writes a corpus to a directory; the kill storm and the benches
//! call [`generate`] in process.
//!
//! The manifest (`manifest.tsv`) has one row per mail:
//!
//! | column | meaning |
//! | --- | --- |
//! | `file` | the mail's file name (`000001.eml`, in arrival order) |
//! | `kind` | `new` (a new request), `followup` (a customer's answer in a thread), `noreply` (a machine's mail) |
//! | `parent` | for a follow-up, the file of the mail it answers |
//! | `internaldate` | when it arrives (RFC 3339, UTC): its IMAP INTERNALDATE |
//! | `mailbox` | `support`, `rma` or `24x7` |
//! | `class` | what ticketd should classify it as: `human`, `bounce`, `auto_reply` |
//! | `lang` | `en`, `ja`, `es` |
//! | `ticket` | `new` (opens a ticket of its own), `parent` (joins its parent's), `none` |
//! | `reply` | the reply ticketd should send: `ack_new`, `ack_followup`, `none` |
//! | `message_id` | its Message-ID, without the angle brackets |

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use std::fmt::Write as _;
use std::path::Path;

/// The mailboxes mail is spread over, as ticketd's config names them.
pub const MAILBOXES: [&str; 3] = ["support", "rma", "24x7"];

/// The manifest's header line.
pub const MANIFEST_HEADER: &str =
    "file\tkind\tparent\tinternaldate\tmailbox\tclass\tlang\tticket\treply\tmessage_id";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub count: usize,
    pub seed: u64,
    /// When the first mail arrives.
    pub start: DateTime<Utc>,
    /// Mean seconds between two arrivals.
    pub spacing_secs: f64,
    /// Shares of the mail (each checked against a draw of its own).
    pub followup_ratio: f64,
    pub noreply_ratio: f64,
    pub attach_ratio: f64,
    pub ja_ratio: f64,
    pub es_ratio: f64,
    /// Share of follow-ups written to another of the three mailboxes than
    /// the mail they answer.
    pub cross_mailbox_ratio: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            count: 1000,
            seed: 1,
            start: Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
            spacing_secs: 20.0,
            followup_ratio: 0.25,
            noreply_ratio: 0.08,
            attach_ratio: 0.08,
            ja_ratio: 0.12,
            es_ratio: 0.12,
            cross_mailbox_ratio: 0.3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    New,
    FollowUp,
    NoReply,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::FollowUp => "followup",
            Kind::NoReply => "noreply",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "new" => Kind::New,
            "followup" => Kind::FollowUp,
            "noreply" => Kind::NoReply,
            _ => return None,
        })
    }
}

/// One generated mail and what should become of it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: String,
    pub kind: Kind,
    /// Index of the mail a follow-up answers.
    pub parent: Option<usize>,
    pub internal_date: DateTime<Utc>,
    /// Index into [`MAILBOXES`].
    pub mailbox: usize,
    pub class: &'static str,
    pub lang: &'static str,
    pub ticket: &'static str,
    pub reply: &'static str,
    pub message_id: String,
    pub raw: Vec<u8>,
}

impl Mail {
    /// `"02-Mar-2026 09:00:00 +0000"`, as IMAP APPEND takes it.
    pub fn imap_date(&self) -> String {
        self.internal_date
            .format("%d-%b-%Y %H:%M:%S +0000")
            .to_string()
    }

    pub fn user(&self) -> String {
        format!("{}@vendor.test", MAILBOXES[self.mailbox])
    }
}

/// SplitMix64: small, and fixed here, so a seed means the same mail forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 11) as u128 * n as u128) >> 53) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap())
            .collect()
    }

    fn upper_alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
        (0..n).map(|_| char::from(*self.pick(A))).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    En,
    Ja,
    Es,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
            Lang::Es => "es",
        }
    }
}

/// The mail programs customers write with: their headers, Message-IDs and
/// quoting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Client {
    Outlook,
    Gmail,
    AppleMail,
    Thunderbird,
}

const CLIENTS: [Client; 4] = [
    Client::Outlook,
    Client::Gmail,
    Client::AppleMail,
    Client::Thunderbird,
];

#[derive(Clone, Debug)]
struct Customer {
    name: String,
    address: String,
    lang: Lang,
    client: Client,
    /// Minutes east of UTC.
    offset_min: i32,
    /// A serial number of their unit.
    serial: String,
}

const EN_FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Irene", "Jack", "Karen",
    "Liam", "Maya", "Noah", "Olivia", "Paul", "Rachel", "Sam", "Tina", "Victor",
];
const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Hall", "Young",
    "King", "Wright", "Scott", "Green", "Baker", "Adams",
];
const EN_DOMAINS: &[&str] = &[
    "acme-logistics.example",
    "northwind.example",
    "brightpath.example.com",
    "studio-lane.example.net",
    "gmail.example",
    "outlook.example",
];
const JA_NAMES: &[(&str, &str)] = &[
    ("山田 太郎", "taro.yamada"),
    ("佐藤 花子", "hanako.sato"),
    ("鈴木 一郎", "ichiro.suzuki"),
    ("高橋 美咲", "misaki.takahashi"),
    ("田中 健", "ken.tanaka"),
    ("伊藤 陽子", "yoko.ito"),
    ("渡辺 翔", "sho.watanabe"),
    ("中村 由美", "yumi.nakamura"),
];
const JA_DOMAINS: &[&str] = &["kaisha.example.jp", "sekkei.example.jp", "eizo.example.jp"];
const ES_NAMES: &[(&str, &str)] = &[
    ("José García", "jose.garcia"),
    ("María López", "maria.lopez"),
    ("Jon Martínez", "jon.martinez"),
    ("Lucía Fernández", "lucia.fernandez"),
    ("Íñigo Sánchez", "inigo.sanchez"),
    ("Carmen Ruiz", "carmen.ruiz"),
    ("Begoña Díaz", "begona.diaz"),
    ("Andrés Muñoz", "andres.munoz"),
];
const ES_DOMAINS: &[&str] = &[
    "empresa.example.es",
    "talleres-norte.example.es",
    "clinica.example.es",
];

/// A request: its subject and the opening of its body, by language, and
/// which mailbox it is written to most often.
struct Topic {
    mailbox: usize,
    en: (&'static str, &'static str),
    ja: (&'static str, &'static str),
    es: (&'static str, &'static str),
}

const TOPICS: &[Topic] = &[
    Topic {
        mailbox: 0,
        en: (
            "Pool degraded after power outage",
            "after a power outage last night the storage pool on our NAS shows as degraded and one disk is marked as faulted.",
        ),
        ja: (
            "停電後にストレージプールが劣化状態になりました",
            "昨夜の停電のあと、NASのストレージプールが劣化状態と表示され、ディスクが1台故障と表示されています。",
        ),
        es: (
            "Volumen degradado tras un corte de luz",
            "después de un corte de luz anoche, el volumen del NAS aparece como degradado y un disco está marcado como fallido.",
        ),
    },
    Topic {
        mailbox: 1,
        en: (
            "RMA request for failed drive",
            "one of the drives in our unit failed its SMART self-test and we would like to return it under warranty.",
        ),
        ja: (
            "故障したディスクの交換(RMA)依頼",
            "装置内のディスクの1台がSMARTセルフテストに失敗しました。保証による交換をお願いします。",
        ),
        es: (
            "Solicitud de RMA por disco averiado",
            "uno de los discos de nuestra unidad ha fallado el autotest SMART y queremos devolverlo en garantía.",
        ),
    },
    Topic {
        mailbox: 0,
        en: (
            "Firmware update stuck at 80%",
            "the firmware update has been stuck at 80% for two hours and the web interface no longer answers.",
        ),
        ja: (
            "ファームウェア更新が80%で止まっています",
            "ファームウェアの更新が2時間以上80%のまま進まず、管理画面にも接続できなくなりました。",
        ),
        es: (
            "La actualización de firmware se queda en el 80%",
            "la actualización de firmware lleva dos horas parada en el 80% y la interfaz web ya no responde.",
        ),
    },
    Topic {
        mailbox: 2,
        en: (
            "URGENT: production storage offline",
            "our production storage went offline at 03:10 and none of the hosts can reach the iSCSI targets. This is a severity 1 outage.",
        ),
        ja: (
            "【緊急】本番ストレージがオフラインです",
            "本日3時10分に本番ストレージがオフラインになり、すべてのホストからiSCSIターゲットに接続できません。業務が停止しています。",
        ),
        es: (
            "URGENTE: almacenamiento de producción caído",
            "nuestro almacenamiento de producción se cayó a las 03:10 y ningún servidor llega a los destinos iSCSI. El servicio está parado.",
        ),
    },
    Topic {
        mailbox: 1,
        en: (
            "Power supply replacement",
            "the redundant power supply of our unit shows a red LED and the system log reports PSU 2 failure.",
        ),
        ja: (
            "電源ユニットの交換について",
            "冗長電源の片方のLEDが赤く点灯し、システムログに電源2の障害が記録されています。",
        ),
        es: (
            "Sustitución de fuente de alimentación",
            "la fuente de alimentación redundante muestra un LED rojo y el registro indica un fallo en la fuente 2.",
        ),
    },
    Topic {
        mailbox: 0,
        en: (
            "Cannot join the NAS to Active Directory",
            "joining the NAS to our Active Directory domain fails with \"clock skew too great\" although NTP is configured.",
        ),
        ja: (
            "Active Directoryに参加できません",
            "NTPは設定済みですが、Active Directoryドメインへの参加が「時刻のずれが大きすぎます」というエラーで失敗します。",
        ),
        es: (
            "No puedo unir el NAS al Directorio Activo",
            "al unir el NAS a nuestro dominio de Directorio Activo aparece el error \"clock skew too great\", aunque el NTP está configurado.",
        ),
    },
    Topic {
        mailbox: 0,
        en: (
            "Replication job fails every night",
            "the nightly replication job to our second site fails with a timeout since last Tuesday.",
        ),
        ja: (
            "レプリケーションが毎晩失敗します",
            "先週の火曜日から、遠隔地へのレプリケーションジョブが毎晩タイムアウトで失敗しています。",
        ),
        es: (
            "La replicación falla todas las noches",
            "desde el martes pasado la tarea de replicación nocturna hacia la segunda sede falla por tiempo de espera.",
        ),
    },
    Topic {
        mailbox: 2,
        en: (
            "System down after controller reboot",
            "after an unplanned controller reboot the system does not come back and the console shows a kernel panic.",
        ),
        ja: (
            "コントローラ再起動後にシステムが起動しません",
            "予期しないコントローラの再起動のあと、システムが起動せず、コンソールにカーネルパニックが表示されています。",
        ),
        es: (
            "Sistema caído tras reiniciar la controladora",
            "tras un reinicio inesperado de la controladora el sistema no arranca y la consola muestra un kernel panic.",
        ),
    },
];

const EN_FOLLOWUPS: &[&str] = &[
    "Additional information: the problem happened again this morning at 07:45.",
    "We replaced the network cable as suggested, but the error is still there.",
    "Attached is the output you asked for. Let me know if you need anything else.",
    "Any news on this? Our users are starting to complain.",
    "Thanks, the workaround helped for now. Please keep the ticket open until the fix is out.",
    "The unit is still under warranty, the invoice number is in my first mail.",
];
const JA_FOLLOWUPS: &[&str] = &[
    "追加情報です。本日7時45分にも同じ現象が発生しました。",
    "ご提案どおりLANケーブルを交換しましたが、エラーは解消していません。",
    "ご依頼のログを取得しました。ほかに必要な情報があればお知らせください。",
    "その後の状況はいかがでしょうか。利用者から問い合わせが来ています。",
];
const ES_FOLLOWUPS: &[&str] = &[
    "Información adicional: el problema se ha repetido esta mañana a las 07:45.",
    "Hemos cambiado el cable de red como nos indicaron, pero el error sigue ahí.",
    "Adjunto la salida que nos pidieron. Quedo a la espera de sus noticias.",
    "¿Hay alguna novedad? Los usuarios empiezan a quejarse.",
];

/// What an answer to a mail needs of it.
#[derive(Clone)]
struct Thread {
    subject: String,
    /// Its References chain with its own Message-ID last.
    refs: Vec<String>,
    /// Its plain text, for the quote.
    body: String,
    /// Index into the customers.
    customer: usize,
}

struct Gen<'o> {
    opts: &'o Options,
    rng: Rng,
    customers: Vec<Customer>,
    mails: Vec<Mail>,
    /// Each mail's thread, for answers to it (`None` for a machine's).
    threads: Vec<Option<Thread>>,
    clock: DateTime<Utc>,
}

/// Every mail of `opts`, in arrival order.
pub fn generate(opts: &Options) -> Vec<Mail> {
    let mut g = Gen {
        opts,
        rng: Rng(opts.seed ^ 0x7469_636b_6574_6421),
        customers: Vec::new(),
        mails: Vec::with_capacity(opts.count),
        threads: Vec::with_capacity(opts.count),
        clock: opts.start,
    };
    // Enough customers that most write once or twice: acknowledgement
    // limits per address are not what a load test measures.
    let people = (opts.count / 3).max(8);
    g.customers = (0..people).map(|i| g.customer(i)).collect();
    for i in 0..opts.count {
        let gap = -opts.spacing_secs * (1.0 - g.rng.unit()).ln();
        g.clock += Duration::milliseconds((gap * 1000.0) as i64 + 1);
        let m = g.one(i);
        g.mails.push(m);
    }
    g.mails
}

/// Writes `mails` as `NNNNNN.eml` files and `manifest.tsv` into `dir`.
pub fn write(dir: &Path, mails: &[Mail]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = String::from(MANIFEST_HEADER);
    manifest.push('\n');
    for m in mails {
        std::fs::write(dir.join(&m.file), &m.raw)?;
        let parent = m.parent.map(|p| mails[p].file.as_str()).unwrap_or("");
        let _ = writeln!(
            manifest,
            "{}\t{}\t{parent}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            m.file,
            m.kind.as_str(),
            m.internal_date
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            MAILBOXES[m.mailbox],
            m.class,
            m.lang,
            m.ticket,
            m.reply,
            m.message_id
        );
    }
    std::fs::write(dir.join("manifest.tsv"), manifest)
}

/// A manifest row read back.
#[derive(Debug, Clone)]
pub struct Row {
    pub file: String,
    pub kind: Kind,
    pub parent: Option<String>,
    pub internal_date: DateTime<Utc>,
    pub mailbox: String,
    pub class: String,
    pub lang: String,
    pub ticket: String,
    pub reply: String,
    pub message_id: String,
}

/// Reads `dir/manifest.tsv` (the first four columns are enough: a corpus
/// of another generator with `file kind parent internaldate` reads too).
pub fn read_manifest(dir: &Path) -> std::io::Result<Vec<Row>> {
    let text = std::fs::read_to_string(dir.join("manifest.tsv"))?;
    let bad = |l: &str| std::io::Error::other(format!("manifest.tsv: bad row {l:?}"));
    let mut out = Vec::new();
    for l in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
        out.push(Row {
            file: get(0),
            kind: Kind::parse(&get(1)).ok_or_else(|| bad(l))?,
            parent: Some(get(2)).filter(|p| !p.is_empty()),
            internal_date: DateTime::parse_from_rfc3339(&get(3))
                .map_err(|_| bad(l))?
                .with_timezone(&Utc),
            mailbox: get(4),
            class: get(5),
            lang: get(6),
            ticket: get(7),
            reply: get(8),
            message_id: get(9),
        });
    }
    Ok(out)
}

impl Gen<'_> {
    fn customer(&mut self, i: usize) -> Customer {
        let r = self.rng.unit();
        let lang = if r < self.opts.ja_ratio {
            Lang::Ja
        } else if r < self.opts.ja_ratio + self.opts.es_ratio {
            Lang::Es
        } else {
            Lang::En
        };
        let (name, local, domain, offset_min) = match lang {
            Lang::En => {
                let first = *self.rng.pick(EN_FIRST);
                let last = *self.rng.pick(EN_LAST);
                (
                    format!("{first} {last}"),
                    format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
                    *self.rng.pick(EN_DOMAINS),
                    *self.rng.pick(&[-480, -300, 0, 60]),
                )
            }
            Lang::Ja => {
                let (n, l) = *self.rng.pick(JA_NAMES);
                (
                    n.to_string(),
                    l.to_string(),
                    *self.rng.pick(JA_DOMAINS),
                    540,
                )
            }
            Lang::Es => {
                let (n, l) = *self.rng.pick(ES_NAMES);
                (n.to_string(), l.to_string(), *self.rng.pick(ES_DOMAINS), 60)
            }
        };
        let client = *self.rng.pick(&CLIENTS);
        let serial = format!("Q{}{}", self.rng.digits(2), self.rng.upper_alnum(8));
        Customer {
            name,
            address: format!("{local}{i}@{domain}"),
            lang,
            client,
            offset_min,
            serial,
        }
    }

    fn one(&mut self, i: usize) -> Mail {
        let file = format!("{:06}.eml", i + 1);
        let answerable: Vec<usize> = (0..self.mails.len())
            .rev()
            .take(400)
            .filter(|&j| self.mails[j].class == "human")
            .collect();
        let draw = self.rng.unit();
        if draw < self.opts.noreply_ratio && !self.mails.is_empty() {
            self.machine(i, file)
        } else if draw < self.opts.noreply_ratio + self.opts.followup_ratio
            && !answerable.is_empty()
        {
            let parent = *self.rng.pick(&answerable);
            self.follow_up(i, file, parent)
        } else {
            self.request(i, file)
        }
    }

    fn date_header(&mut self, c: &Customer) -> (DateTime<Utc>, String) {
        // Written a few seconds to a few minutes before it arrives.
        let written = self.clock - Duration::seconds(2 + self.rng.below(170) as i64);
        let tz = FixedOffset::east_opt(c.offset_min * 60).unwrap();
        (
            written,
            written
                .with_timezone(&tz)
                .format("%a, %d %b %Y %H:%M:%S %z")
                .to_string(),
        )
    }

    fn message_id(&mut self, c: &Customer, i: usize) -> String {
        let domain = c.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let tag = format!("{:x}{:04x}", i + 1, self.opts.seed & 0xffff);
        match c.client {
            Client::Gmail => format!(
                "CAG{}+{}{}@mail.gmail.example",
                self.rng.upper_alnum(10),
                tag,
                self.rng.upper_alnum(12)
            ),
            Client::Outlook => format!(
                "AM9PR04MB{}{}{}@AM9PR04MB{}.eurprd04.prod.outlook.example",
                self.rng.digits(4),
                tag.to_uppercase(),
                self.rng.upper_alnum(6),
                self.rng.digits(4)
            ),
            Client::AppleMail => format!(
                "{}-{}-{}@{domain}",
                self.rng.hex(8).to_uppercase(),
                tag.to_uppercase(),
                self.rng.hex(12).to_uppercase()
            ),
            Client::Thunderbird => {
                format!("{}-{}-{}@{domain}", self.rng.hex(8), tag, self.rng.hex(12))
            }
        }
    }

    fn request(&mut self, i: usize, file: String) -> Mail {
        let who = self.rng.below(self.customers.len());
        let c = self.customers[who].clone();
        let t = self.rng.pick(TOPICS);
        let mailbox = if self.rng.chance(0.8) {
            t.mailbox
        } else {
            self.rng.below(3)
        };
        let (subject, opening) = match c.lang {
            Lang::En => t.en,
            Lang::Ja => t.ja,
            Lang::Es => t.es,
        };
        let invoice = format!("INV-2025-{}", self.rng.digits(5));
        let body = match c.lang {
            Lang::En => format!(
                "Hello,\n\n{}\n\nModel TS-h1290FX, serial number {}. The unit was bought in\nSeptember 2025 (invoice {invoice}).\n\nCould you please advise what to do next?\n\nBest regards,\n{}\n",
                if mailbox == 2 {
                    capitalised(opening)
                } else {
                    format!("we need your help: {opening}")
                },
                c.serial,
                c.name
            ),
            Lang::Ja => format!(
                "サポートご担当者様\n\nいつもお世話になっております。\n{opening}\n\n機種: TS-h1290FX\nシリアル番号: {}\n請求書番号: {invoice}\n\n対応方法をご教示いただけますでしょうか。\nよろしくお願いいたします。\n\n{}\n",
                c.serial, c.name
            ),
            Lang::Es => format!(
                "Buenos días:\n\nLes escribo porque {opening}\n\nModelo TS-h1290FX, número de serie {}. Lo compramos en\nseptiembre de 2025 (factura {invoice}).\n\n¿Podrían indicarnos cómo proceder?\n\nUn saludo,\n{}\n",
                c.serial, c.name
            ),
        };
        let message_id = self.message_id(&c, i);
        let (_, date) = self.date_header(&c);
        let attach = self.rng.chance(self.opts.attach_ratio);
        let raw = self.compose(
            &c,
            mailbox,
            subject,
            &date,
            &message_id,
            None,
            &body,
            attach,
        );
        self.threads.push(Some(Thread {
            subject: subject.to_string(),
            refs: vec![message_id.clone()],
            body,
            customer: who,
        }));
        Mail {
            file,
            kind: Kind::New,
            parent: None,
            internal_date: self.clock,
            mailbox,
            class: "human",
            lang: c.lang.code(),
            ticket: "new",
            reply: "ack_new",
            message_id,
            raw,
        }
    }

    fn follow_up(&mut self, i: usize, file: String, parent: usize) -> Mail {
        let p = &self.mails[parent];
        let thread = self.threads[parent]
            .clone()
            .expect("a person's mail has a thread");
        let (subject, refs) = (thread.subject, thread.refs);
        let c = self.customers[thread.customer].clone();
        let mailbox = if self.rng.chance(self.opts.cross_mailbox_ratio) {
            (p.mailbox + 1 + self.rng.below(2)) % 3
        } else {
            p.mailbox
        };
        let parent_id = p.message_id.clone();
        let parent_text: String = thread
            .body
            .lines()
            .take(16)
            .map(|l| format!("{l}\n"))
            .collect();
        let parent_date = p.internal_date;
        let new = match c.lang {
            Lang::En => self.rng.pick(EN_FOLLOWUPS).to_string(),
            Lang::Ja => self.rng.pick(JA_FOLLOWUPS).to_string(),
            Lang::Es => self.rng.pick(ES_FOLLOWUPS).to_string(),
        };
        let sign = match c.lang {
            Lang::En => format!("\n\nThanks,\n{}\n", first_word(&c.name)),
            Lang::Ja => format!("\n\nよろしくお願いいたします。\n{}\n", c.name),
            Lang::Es => format!("\n\nGracias,\n{}\n", c.name),
        };
        let quote = quote_header(&c, parent_date);
        // Outlook puts the old mail under its header unquoted; the others
        // quote it with `>`.
        let quoted: String = parent_text
            .lines()
            .map(|l| match (c.client, l.is_empty()) {
                (Client::Outlook, _) => format!("{l}\n"),
                (_, true) => ">\n".to_string(),
                (_, false) => format!("> {l}\n"),
            })
            .collect();
        let body = format!("{new}{sign}\n{quote}\n{quoted}");
        let re = if c.client == Client::Outlook {
            "RE: "
        } else {
            "Re: "
        };
        let re_subject = if subject.starts_with("Re: ") || subject.starts_with("RE: ") {
            subject.clone()
        } else {
            format!("{re}{subject}")
        };
        let message_id = self.message_id(&c, i);
        let (_, date) = self.date_header(&c);
        let mut chain = refs.clone();
        let attach = self.rng.chance(self.opts.attach_ratio);
        let raw = self.compose(
            &c,
            mailbox,
            &re_subject,
            &date,
            &message_id,
            Some((&parent_id, &chain)),
            &body,
            attach,
        );
        chain.push(message_id.clone());
        // Keep the thread's References short, as clients trim them.
        if chain.len() > 8 {
            chain.remove(1);
        }
        self.threads.push(Some(Thread {
            subject: re_subject,
            refs: chain,
            body,
            customer: thread.customer,
        }));
        Mail {
            file,
            kind: Kind::FollowUp,
            parent: Some(parent),
            internal_date: self.clock,
            mailbox,
            class: "human",
            lang: c.lang.code(),
            ticket: "parent",
            reply: "ack_followup",
            message_id,
            raw,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compose(
        &mut self,
        c: &Customer,
        mailbox: usize,
        subject: &str,
        date: &str,
        message_id: &str,
        answers: Option<(&str, &[String])>,
        body: &str,
        attach: bool,
    ) -> Vec<u8> {
        let to = format!("{}@vendor.test", MAILBOXES[mailbox]);
        let mut h = String::new();
        let received_at = self.clock.format("%a, %d %b %Y %H:%M:%S +0000");
        let _ = write!(
            h,
            "Return-Path: <{addr}>\r\nReceived: from mx.{dom} (mx.{dom} [192.0.2.{ip}])\r\n\tby mail.vendor.test with ESMTPS id {qid}\r\n\tfor <{to}>; {received_at}\r\n",
            addr = c.address,
            dom = c.address.rsplit_once('@').map(|(_, d)| d).unwrap_or(""),
            ip = 1 + self.rng.below(250),
            qid = self.rng.upper_alnum(12),
        );
        let from = match c.lang {
            Lang::En => format!("{} <{}>", c.name, c.address),
            Lang::Ja => format!("{} <{}>", encoded_word_jis(&c.name), c.address),
            Lang::Es => format!("{} <{}>", encoded_word_latin1(&c.name), c.address),
        };
        let subject_h = match c.lang {
            Lang::En => subject.to_string(),
            Lang::Ja => encoded_word_jis(subject),
            Lang::Es if subject.is_ascii() => subject.to_string(),
            Lang::Es => encoded_word_latin1(subject),
        };
        let _ = write!(
            h,
            "From: {from}\r\nTo: {to}\r\nSubject: {subject_h}\r\nDate: {date}\r\nMessage-ID: <{message_id}>\r\n"
        );
        if let Some((parent, refs)) = answers {
            let refs: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
            let _ = write!(
                h,
                "In-Reply-To: <{parent}>\r\nReferences: {}\r\n",
                refs.join("\r\n ")
            );
        }
        match c.client {
            Client::Outlook => {
                let _ = write!(
                    h,
                    "Thread-Topic: {}\r\nX-MS-Has-Attach: {}\r\nX-Mailer: Microsoft Outlook 16.0\r\nContent-Language: {}\r\n",
                    if subject.is_ascii() {
                        subject.to_string()
                    } else {
                        subject_h.clone()
                    },
                    if attach { "yes" } else { "" },
                    match c.lang {
                        Lang::En => "en-US",
                        Lang::Ja => "ja-JP",
                        Lang::Es => "es-ES",
                    }
                );
            }
            Client::AppleMail => {
                h.push_str("X-Mailer: Apple Mail (2.3774.500.171.1.1)\r\n");
            }
            Client::Thunderbird => {
                h.push_str("User-Agent: Mozilla Thunderbird\r\n");
            }
            Client::Gmail => {}
        }
        h.push_str("MIME-Version: 1.0\r\n");
        let text = text_part(c.lang, body);
        let mut out = h.into_bytes();
        let boundary = format!("----=_Part_{}_{}", self.rng.digits(6), self.rng.digits(9));
        let html = matches!(c.client, Client::Outlook | Client::Gmail) && c.lang == Lang::En;
        let text = if html {
            let alt = format!("alt{}", self.rng.hex(16));
            let mut t = format!(
                "Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n--{alt}\r\n"
            )
            .into_bytes();
            t.extend_from_slice(&text);
            t.extend_from_slice(format!("\r\n--{alt}\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n").as_bytes());
            t.extend_from_slice(quoted_printable(&html_of(body)).as_bytes());
            t.extend_from_slice(format!("\r\n--{alt}--\r\n").as_bytes());
            t
        } else {
            text
        };
        if attach {
            let (name, ctype, data) = self.attachment(c);
            out.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n").as_bytes(),
            );
            out.extend_from_slice(&text);
            out.extend_from_slice(
                format!("\r\n--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n").as_bytes(),
            );
            out.extend_from_slice(base64_lines(&data).as_bytes());
            out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        } else {
            out.extend_from_slice(&text);
        }
        out
    }

    fn attachment(&mut self, c: &Customer) -> (String, &'static str, Vec<u8>) {
        match self.rng.below(3) {
            0 => {
                let mut log = String::new();
                let lines = 40 + self.rng.below(160);
                let mut t = self.clock - Duration::hours(6);
                for _ in 0..lines {
                    t += Duration::seconds(1 + self.rng.below(120) as i64);
                    let _ = writeln!(
                        log,
                        "{} nas kernel: [{:>6}.{}] {} ata{}.00: {}",
                        t.format("%b %d %H:%M:%S"),
                        self.rng.below(99999),
                        self.rng.digits(6),
                        self.rng.pick(&["WARN", "ERR", "INFO"]),
                        1 + self.rng.below(8),
                        self.rng.pick(&[
                            "failed command: READ FPDMA QUEUED",
                            "status: { DRDY ERR }",
                            "error: { UNC }",
                            "configured for UDMA/133",
                            "hard resetting link",
                        ])
                    );
                }
                (
                    format!("system-{}.log", c.serial.to_lowercase()),
                    "text/plain",
                    log.replace('\n', "\r\n").into_bytes(),
                )
            }
            1 => {
                // A small PNG-shaped screenshot: the signature, then noise.
                let mut d = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
                let n = 3000 + self.rng.below(9000);
                d.extend((0..n).map(|_| self.rng.next() as u8));
                ("screenshot.png".into(), "image/png", d)
            }
            _ => {
                let mut d = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
                let n = 4000 + self.rng.below(12000);
                d.extend((0..n).map(|_| self.rng.next() as u8));
                d.extend_from_slice(b"\n%%EOF\n");
                (
                    format!("invoice-{}.pdf", self.rng.digits(5)),
                    "application/pdf",
                    d,
                )
            }
        }
    }

    /// A bounce (DSN) of an acknowledgement to a customer, or an
    /// out-of-office answer from one.
    fn machine(&mut self, i: usize, file: String) -> Mail {
        let c = self.customers[self.rng.below(self.customers.len())].clone();
        let mailbox = self.rng.below(3);
        let to = format!("{}@vendor.test", MAILBOXES[mailbox]);
        let ours = format!(
            "ack-{}.{}@tickets.vendor.test",
            self.rng.hex(12),
            self.rng.hex(6)
        );
        let at = self.clock - Duration::seconds(1 + self.rng.below(30) as i64);
        let date = at.format("%a, %d %b %Y %H:%M:%S +0000").to_string();
        let dom = c
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        let tag = format!("{:x}{:04x}", i + 1, self.opts.seed & 0xffff);
        self.threads.push(None);
        let (class, message_id, raw) = if self.rng.chance(0.5) {
            let (id, raw) = self.bounce(&c, &to, &dom, &ours, &date, &tag);
            ("bounce", id, raw)
        } else {
            let (id, raw) = self.auto_reply(&c, &to, &dom, &ours, &date, &tag);
            ("auto_reply", id, raw)
        };
        Mail {
            file,
            kind: Kind::NoReply,
            parent: None,
            internal_date: self.clock,
            mailbox,
            class,
            lang: c.lang.code(),
            ticket: "none",
            reply: "none",
            message_id,
            raw,
        }
    }

    fn bounce(
        &mut self,
        c: &Customer,
        to: &str,
        dom: &str,
        ours: &str,
        date: &str,
        tag: &str,
    ) -> (String, Vec<u8>) {
        let boundary = format!("{}.{}/mx.{dom}", self.rng.hex(10).to_uppercase(), tag);
        let qid = self.rng.upper_alnum(10);
        let (status, diag, action) = *self.rng.pick(&[
            (
                "5.1.1",
                "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
                "failed",
            ),
            (
                "5.2.2",
                "smtp; 552 5.2.2 <{rcpt}>: Mailbox full",
                "failed",
            ),
            (
                "4.4.1",
                "X-Postfix; connect to mx.{dom}[192.0.2.25]:25: Connection timed out",
                "delayed",
            ),
        ]);
        let rcpt = &c.address;
        let diag = diag.replace("{rcpt}", rcpt).replace("{dom}", dom);
        let id = format!("20260302{}.{qid}@mx.{dom}", self.rng.digits(6));
        let subject = if action == "failed" {
            "Undelivered Mail Returned to Sender"
        } else {
            "Delayed Mail (still being retried)"
        };
        let human = if action == "failed" {
            format!(
                "This is the mail system at host mx.{dom}.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients. It's attached below.\r\n\r\nFor further assistance, please send mail to postmaster.\r\n\r\n                   The mail system\r\n\r\n<{rcpt}>: {}\r\n",
                diag.trim_start_matches("smtp; ")
            )
        } else {
            format!(
                "This is the mail system at host mx.{dom}.\r\n\r\n####################################################################\r\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n####################################################################\r\n\r\nYour message could not be delivered for 4.0 hours.\r\nIt will be retried until it is 5.0 days old.\r\n\r\n<{rcpt}>: {}\r\n",
                diag.trim_start_matches("X-Postfix; ")
            )
        };
        let raw = format!(
            "Return-Path: <>\r\nReceived: by mx.{dom} (Postfix)\r\n\tid {qid}; {date}\r\nDate: {date}\r\nFrom: MAILER-DAEMON@mx.{dom} (Mail Delivery System)\r\nSubject: {subject}\r\nTo: {to}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\nContent-Transfer-Encoding: 8bit\r\nMessage-Id: <{id}>\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{human}\r\n--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{dom}\r\nX-Postfix-Queue-ID: {qid}\r\nX-Postfix-Sender: rfc822; {to}\r\nArrival-Date: {date}\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: {action}\r\nStatus: {status}\r\nDiagnostic-Code: {diag}\r\n\r\n--{boundary}\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\nReturn-Path: <{to}>\r\nFrom: Vendor Support <{to}>\r\nTo: {rcpt}\r\nSubject: [TKT#{n}] We have received your request\r\nMessage-ID: <{ours}>\r\nAuto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n\r\n--{boundary}--\r\n",
            n = 1 + self.rng.below(900),
        );
        (id, raw.into_bytes())
    }

    fn auto_reply(
        &mut self,
        c: &Customer,
        to: &str,
        dom: &str,
        ours: &str,
        date: &str,
        tag: &str,
    ) -> (String, Vec<u8>) {
        let id = format!("auto-{}-{tag}@{dom}", self.rng.hex(10));
        let back = "2026-03-16";
        let mut h = format!(
            "Return-Path: <{addr}>\r\nDate: {date}\r\nTo: {to}\r\nMessage-ID: <{id}>\r\nIn-Reply-To: <{ours}>\r\nReferences: <{ours}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n",
            addr = c.address
        );
        let (subject, body, charset) = match (c.lang, c.client) {
            (Lang::Ja, _) => (
                encoded_word_jis("自動応答: 不在のお知らせ"),
                format!(
                    "誠に恐れ入りますが、3月16日まで不在にしております。\n戻り次第、順次ご連絡いたします。\n\n{}\n",
                    c.name
                ),
                "ISO-2022-JP",
            ),
            (Lang::Es, _) => (
                encoded_word_latin1("Respuesta automática: Fuera de la oficina"),
                format!(
                    "Gracias por su mensaje. Estoy fuera de la oficina hasta el {back} con acceso limitado al correo.\nPara asuntos urgentes, escriba a soporte@{dom}.\n\n{}\n",
                    c.name
                ),
                "ISO-8859-1",
            ),
            (Lang::En, Client::Outlook) => {
                h.push_str("X-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: ");
                h.push_str(&c.address);
                h.push_str("\r\n");
                (
                    "Automatic reply: We have received your request".to_string(),
                    format!(
                        "I am out of the office until {back} with no access to email.\nFor urgent matters please contact helpdesk@{dom}.\n\n{}\n",
                        c.name
                    ),
                    "utf-8",
                )
            }
            (Lang::En, _) => {
                h.push_str("Precedence: bulk\r\nX-Autoreply: yes\r\n");
                (
                    "Out of Office: We have received your request".to_string(),
                    format!(
                        "Hello,\n\nI'm away until {back}. Your message will not be forwarded.\n\n{}\n",
                        c.name
                    ),
                    "utf-8",
                )
            }
        };
        let from = match c.lang {
            Lang::En => format!("{} <{}>", c.name, c.address),
            Lang::Ja => format!("{} <{}>", encoded_word_jis(&c.name), c.address),
            Lang::Es => format!("{} <{}>", encoded_word_latin1(&c.name), c.address),
        };
        let _ = write!(h, "From: {from}\r\nSubject: {subject}\r\n");
        let mut raw = h.into_bytes();
        raw.extend_from_slice(&text_part_charset(charset, &body));
        (id, raw)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn first_word(s: &str) -> &str {
    s.split(' ').next().unwrap_or(s)
}

/// The line a client writes above the quote.
fn quote_header(c: &Customer, at: DateTime<Utc>) -> String {
    let tz = FixedOffset::east_opt(c.offset_min * 60).unwrap();
    let t = at.with_timezone(&tz);
    match (c.lang, c.client) {
        (Lang::Ja, _) => format!(
            "{} {} <{}>:",
            t.format("%Y年%-m月%-d日 %H:%M"),
            c.name,
            c.address
        ),
        (Lang::Es, Client::Gmail) => format!(
            "El {} a las {}, {} (<{}>) escribió:",
            t.format("%-d/%-m/%Y"),
            t.format("%H:%M"),
            c.name,
            c.address
        ),
        (Lang::Es, _) => format!("El {}, {} escribió:", t.format("%d/%m/%Y %H:%M"), c.name),
        (_, Client::Gmail) => format!(
            "On {} at {}, {} <{}> wrote:",
            t.format("%a, %b %-d, %Y"),
            t.format("%-I:%M %p"),
            c.name,
            c.address
        ),
        (_, Client::Outlook) => format!(
            "-----Original Message-----\nFrom: {} <{}>\nSent: {}\nTo: support@vendor.test\nSubject: Request",
            c.name,
            c.address,
            t.format("%A, %B %-d, %Y %-I:%M %p")
        ),
        (_, Client::AppleMail) => format!(
            "> On {}, at {}, {} <{}> wrote:",
            t.format("%-d %b %Y"),
            t.format("%H:%M"),
            c.name,
            c.address
        ),
        (_, Client::Thunderbird) => format!(
            "On {} {}, {} wrote:",
            t.format("%-m/%-d/%y"),
            t.format("%-I:%M %p"),
            c.name
        ),
    }
}

fn text_part(lang: Lang, body: &str) -> Vec<u8> {
    match lang {
        Lang::En => text_part_charset("UTF-8", body),
        Lang::Ja => text_part_charset("ISO-2022-JP", body),
        Lang::Es => text_part_charset("ISO-8859-1", body),
    }
}

/// A text/plain part (its header and body) in `charset`.
fn text_part_charset(charset: &str, body: &str) -> Vec<u8> {
    let crlf = body.replace('\n', "\r\n");
    match charset {
        "ISO-2022-JP" => {
            let mut out = b"Content-Type: text/plain; charset=\"ISO-2022-JP\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n".to_vec();
            out.extend_from_slice(&iso_2022_jp(&crlf));
            out
        }
        "ISO-8859-1" => {
            let mut out = b"Content-Type: text/plain; charset=\"ISO-8859-1\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".to_vec();
            out.extend_from_slice(quoted_printable_bytes(&latin1(&crlf)).as_bytes());
            out
        }
        _ => {
            let mut out = b"Content-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
            out.extend_from_slice(crlf.as_bytes());
            out
        }
    }
}

fn html_of(body: &str) -> String {
    let mut h = String::from(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><div dir=\"ltr\">",
    );
    for l in body.lines() {
        let esc = l
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        if esc.is_empty() {
            h.push_str("<div><br></div>\n");
        } else {
            let _ = writeln!(h, "<div>{esc}</div>");
        }
    }
    h.push_str("</div></body></html>\n");
    h
}

fn iso_2022_jp(s: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::ISO_2022_JP.encode(s);
    bytes.into_owned()
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn base64_lines(data: &[u8]) -> String {
    let s = b64(data);
    s.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// `=?ISO-2022-JP?B?...?=`, as Japanese clients write names and subjects.
fn encoded_word_jis(s: &str) -> String {
    format!("=?ISO-2022-JP?B?{}?=", b64(&iso_2022_jp(s)))
}

/// `=?ISO-8859-1?Q?...?=` (plain ASCII left as it is).
fn encoded_word_latin1(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::from("=?ISO-8859-1?Q?");
    for b in latin1(s) {
        match b {
            b' ' => out.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "={b:02X}");
            }
        }
    }
    out.push_str("?=");
    out
}

fn quoted_printable(s: &str) -> String {
    quoted_printable_bytes(s.as_bytes())
}

/// Quoted-printable with CRLF line ends kept and soft breaks under 76.
fn quoted_printable_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    let mut col = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            out.push_str("\r\n");
            col = 0;
            i += 2;
            continue;
        }
        let enc = if (c == b' ' || c == b'\t') && matches!(b.get(i + 1), None | Some(b'\r'))
            || !(32..=126).contains(&c)
            || c == b'='
        {
            format!("={c:02X}")
        } else {
            char::from(c).to_string()
        };
        if col + enc.len() > 75 {
            out.push_str("=\r\n");
            col = 0;
        }
        col += enc.len();
        out.push_str(&enc);
        i += 1;
    }
    out
}

/// Command-line options of `gen-corpus`: `--count N --seed S --out DIR`
/// (and the shares, `--start`, `--spacing-s`).
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
) -> Result<(Options, std::path::PathBuf), String> {
    let mut o = Options::default();
    let mut out = None;
    let mut it = args.into_iter();
    while let Some(k) = it.next() {
        if k == "-h" || k == "--help" {
            return Err(USAGE.to_string());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{k} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{k}: not a number: {v}"))
        };
        match k.as_str() {
            "--out" => out = Some(std::path::PathBuf::from(v)),
            "--count" => o.count = v.parse().map_err(|_| format!("--count: {v}"))?,
            "--seed" => o.seed = v.parse().map_err(|_| format!("--seed: {v}"))?,
            "--start" => {
                o.start = DateTime::parse_from_rfc3339(&v)
                    .map_err(|e| format!("--start: {e}"))?
                    .with_timezone(&Utc)
            }
            "--spacing-s" => o.spacing_secs = num(&v)?,
            "--followup-ratio" => o.followup_ratio = num(&v)?,
            "--noreply-ratio" => o.noreply_ratio = num(&v)?,
            "--attach-ratio" => o.attach_ratio = num(&v)?,
            "--ja-ratio" => o.ja_ratio = num(&v)?,
            "--es-ratio" => o.es_ratio = num(&v)?,
            "--cross-mailbox-ratio" => o.cross_mailbox_ratio = num(&v)?,
            _ => return Err(format!("unknown argument {k}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    Ok((o, out))
}

pub const USAGE: &str = "usage: gen-corpus --out DIR [--count N] [--seed S] [--start RFC3339]
                  [--spacing-s SECS] [--followup-ratio R] [--noreply-ratio R]
                  [--attach-ratio R] [--ja-ratio R] [--es-ratio R] [--cross-mailbox-ratio R]
Writes NNNNNN.eml files and manifest.tsv (file kind parent internaldate mailbox
class lang ticket reply message_id) into DIR: the same options, the same bytes.";
