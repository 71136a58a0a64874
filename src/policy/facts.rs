//! The canonical facts a request can carry, and their names as a customer reads them.

use crate::model::Language;

/// The canonical facts a request can carry.
pub const FACTS: &[&str] = &[
    "serial",
    "invoice",
    "tax_id",
    "company",
    "product",
    "version",
    "os",
    "description",
];

/// The name of a fact as the customer reads it.
pub fn fact_name(fact: &str, lang: Language) -> &'static str {
    match (fact, lang) {
        ("serial", Language::En) => "the product's serial number",
        ("serial", Language::Ja) => "製品のシリアル番号",
        ("serial", Language::Es) => "el número de serie del producto",
        ("invoice", Language::En) => "proof of purchase (invoice number or a copy)",
        ("invoice", Language::Ja) => "購入証明（請求書番号または納品書の写し）",
        ("invoice", Language::Es) => "el número de factura o una copia de la factura",
        ("tax_id", Language::En) => "your company's tax ID",
        ("tax_id", Language::Ja) => "法人番号",
        ("tax_id", Language::Es) => "el CIF de su empresa",
        ("company", Language::En) => "your company's name",
        ("company", Language::Ja) => "会社名",
        ("company", Language::Es) => "el nombre de su empresa",
        ("product", Language::En) => "the product concerned",
        ("product", Language::Ja) => "対象製品名",
        ("product", Language::Es) => "el producto afectado",
        ("version", Language::En) => "the software version",
        ("version", Language::Ja) => "ソフトウェアのバージョン",
        ("version", Language::Es) => "la versión del software",
        ("os", Language::En) => "the operating system",
        ("os", Language::Ja) => "オペレーティングシステム",
        ("os", Language::Es) => "el sistema operativo",
        (_, Language::En) => "a description of the problem",
        (_, Language::Ja) => "問題の詳しい内容",
        (_, Language::Es) => "una descripción del problema",
    }
}
