"""Generate the example data sets for the `extract` pipelines.

Deterministic (random.Random(7)); only the standard library plus polars (for Parquet).
Run from anywhere:  .venv/bin/python data/make_data.py

Writes, next to this script:
  tickets.csv        ~300 support messages      (pipelines/tickets.yaml)
  invoices.parquet   ~200 OCR-like invoices     (pipelines/invoices.yaml)
  products.csv       ~250 marketplace listings  (pipelines/products.yaml)
  images/*.png       64x64 product photos for ~20% of the listings
  demo.csv           10 short messages          (pipelines/demo.yaml)
  labels/            the truth of those rows, for `extract eval` (the pipelines' eval.labels):
                     tickets.csv, invoices.jsonl, products.csv, demo.csv

A label is written from the very values the generator renders into a text, and only for the
fields whose truth it knows; each label writer says which fields it leaves out, and why. The
truth is recorded without drawing anything more from the random generator, so the data files
come out byte for byte as they did before labels existed.
"""

import csv
import datetime as dt
import json
import re
import struct
import zlib
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from random import Random

import polars as pl

HERE = Path(__file__).resolve().parent
R = Random(7)


def pick(seq):
    return R.choice(seq)


def maybe(p):
    return R.random() < p


def typo(text, rate=0.04):
    """Introduce keyboard-ish typos into some words (never inside digits)."""
    words = text.split(" ")
    out = []
    for w in words:
        if len(w) > 3 and w.isalpha() and R.random() < rate:
            i = R.randrange(len(w) - 1)
            kind = R.randrange(3)
            if kind == 0:  # swap
                w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
            elif kind == 1:  # drop
                w = w[:i] + w[i + 1 :]
            else:  # double
                w = w[:i] + w[i] + w[i:]
        out.append(w)
    return " ".join(out)


# ---------------------------------------------------------------------------
# Shared fragments
# ---------------------------------------------------------------------------

FIRST = [
    "Anna", "Ben", "Carla", "David", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kim", "Lena", "Marco", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tara",
    "Uwe", "Valentina", "Wei", "Xavier", "Yusuf", "Zoë", "José", "Chloé", "Søren", "Małgorzata",
    "Björn", "Aoife", "Ngozi", "Mateo", "Olivia", "Liam", "Fatima", "Raj", "Elena", "Tom",
]
LAST = [
    "Müller", "Smith", "García", "Rossi", "Nowak", "Johansson", "O'Brien", "Dubois", "Tanaka",
    "Kowalski", "Schmidt", "Brown", "Fernández", "Jensen", "Novák", "Patel", "Nguyen", "Khan",
    "van der Berg", "Lefèvre", "Andersson", "Costa", "Walsh", "Becker", "Ivanova", "Hughes",
]


def person():
    return f"{pick(FIRST)} {pick(LAST)}"


LABELS = HERE / "labels"


def write_labels_csv(name, header, rows):
    """A labels CSV: null is an empty cell, booleans true/false, lists JSON arrays."""
    def text(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    LABELS.mkdir(exist_ok=True)
    with open(LABELS / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow([text(row[h]) for h in header])


# ---------------------------------------------------------------------------
# 1. Support tickets
# ---------------------------------------------------------------------------

T_PRODUCTS = [
    "AeroPress Go", "Nimbus X2 headphones", "Premium plan", "Family plan", "SmartScale S3",
    "Orbit robot vacuum", "KettlePro 1.7L", "TrailRunner 5 shoes", "HomeCam mini",
    "ErgoChair V2", "Luma desk lamp", "the mobile app", "PowerBank 20000", "Yoga mat XL",
    "gift card", "FitBand 4", "Cloud backup 1TB", "Barista grinder", "winter jacket (navy, L)",
]


def order_ref():
    n = R.randrange(100000, 1000000)
    fmt = pick(["ORD-{n}", "ORD-{n}", "#{n}", "order {n}", "ord{n}", "Order no. {n}",
                "ORD {n}", "order number ORD-{n}", "Bestellung {n}", "nr. ORD-{n}"])
    return fmt.format(n=n)


def money(lo, hi):
    return Decimal(R.randrange(int(lo * 100), int(hi * 100))) / 100


def amount_str(a):
    return pick([f"€{a}", f"{a} EUR", f"${a}", f"{a}€", f"£{a}", f"{a} euros",
                 f"{str(a).replace('.', ',')} €"])


GREET = ["Hi,", "Hello,", "Hello team,", "Dear support,", "hey", "Hi there!", "Good morning,",
         "To whom it may concern,", "Hallo,", "", "", "", "Yo"]
SIGN = ["Thanks, {n}", "Best regards,\n{n}", "-- {n}", "Cheers\n{n}", "{n}",
        "Kind regards\n{n}\nSent from my iPhone", "thx", "", "", "",
        "Regards,\n{n}\nAcme GmbH | Procurement\nTel. +49 30 1234567",
        "Sent from my Galaxy", "Mit freundlichen Grüßen\n{n}"]

# (category hint, priority hint, sentiment hint, templates) -- hints are not written anywhere;
# they only steer which fragments combine.
TICKET_TEMPLATES = {
    "shipping": [
        "My order {o} still hasn't arrived. Tracking says 'in transit' since {d} days.",
        "where is my parcel?? {o} was supposed to come last week",
        "The courier marked {o} as delivered but there is nothing at my door. Neighbours didn't get it either.",
        "Package for {o} arrived completely crushed, the {p} inside is dented.",
        "Can you ship {o} to a pickup point instead? I'm not home during the day.",
        "Tracking link for {o} gives a 404.",
    ],
    "billing": [
        "I was charged twice for {o}. Please refund the duplicate payment of {a}.",
        "Why did my card get charged {a} for the {p}? I cancelled last month.",
        "Need an invoice with our company VAT number for {o}, the one I got has my private address.",
        "Your renewal charged me {a} without any reminder email. That's not ok.",
        "My payment keeps failing at checkout with error code P-402, card works everywhere else.",
        "Can I switch from monthly to yearly billing for the {p} and get the difference credited?",
    ],
    "returns_refunds": [
        "I want to return the {p} from {o}, it doesn't fit. How do I get a label?",
        "Returned {o} three weeks ago and still no refund of {a}. The return was delivered on the 4th.",
        "The {p} stopped working after 2 days. I'd like my money back ({a}).",
        "Please cancel and refund, the {p} is not as described on the website.",
        "Refund pls. {o}",
    ],
    "technical_issue": [
        "The {p} won't connect to wifi after the latest firmware update. Already reset it twice.",
        "App crashes every time I open the settings page (Android 14, Pixel 7).",
        "{p} shows error E21 and beeps constantly. Manual says contact support.",
        "Sync between {p} and the app stopped working, data from the last 5 days is missing.",
        "Since the update the \"export to CSV\" button does nothing. Chrome and Firefox, same thing.",
    ],
    "account_access": [
        "I can't log in, the password reset email never arrives (checked spam).",
        "My account got locked after too many attempts, I need access today for a client meeting!!",
        "Lost my phone and now can't get the 2FA code. How do I recover my account?",
        "Someone changed the email on my account, I did NOT do this. Please lock it.",
        "Please delete my account and all my data (GDPR).",
    ],
    "product_question": [
        "Does the {p} work with 110V? Moving to the US next month.",
        "Is the {p} dishwasher safe?",
        "what's the difference between the {p} and the older model?",
        "Do you have the {p} in a bigger size, and when will it be back in stock?",
        "Is there a student discount on the {p}?",
    ],
    "order_change": [
        "Please change the delivery address for {o} to: {addr}",
        "Can I still cancel {o}? Ordered by mistake an hour ago.",
        "I ordered the wrong colour, can you swap it to black before {o} ships?",
        "Please add a gift note to {o}: \"Happy birthday, love, M.\"",
    ],
    "complaint": [
        "This is the third time I write about {o}. Nobody answers. I will dispute the charge with my bank.",
        "Your hotline kept me on hold for 45 minutes and then hung up. Unacceptable.",
        "The quality of the {p} is terrible, seams came apart after one wash. Very disappointed.",
        "Your driver was rude and threw the parcel over the fence. {o}",
        "If I don't hear back by Friday I'm contacting my lawyer and the consumer protection office.",
    ],
    "feedback": [
        "Just wanted to say the {p} is great, best purchase this year! Fast delivery too.",
        "Suggestion: please add dark mode to the app. Otherwise love it.",
        "Thanks to Maria from your chat team, she solved my issue in 5 minutes 🙏",
        "The new packaging is much better, no more plastic. 👍",
    ],
    "safety": [
        "The {p} got extremely hot while charging and there was a burning smell. My kid was nearby. What should I do?",
        "The charger for the {p} sparked when I plugged it in. I unplugged it immediately.",
    ],
}

FOREIGN = [
    ("de", "Meine Bestellung {o} ist immer noch nicht angekommen. Können Sie bitte nachsehen, wo das Paket ist?"),
    ("de", "Ich möchte den {p} zurückgeben und mein Geld ({a}) zurück. Das Gerät ist defekt."),
    ("de", "Wurde für {o} doppelt belastet!! Bitte sofort erstatten."),
    ("es", "Hola, mi pedido {o} llegó roto. Quiero un reembolso de {a}, por favor."),
    ("es", "No puedo iniciar sesión en mi cuenta desde ayer. ¿Pueden ayudarme?"),
    ("fr", "Bonjour, je n'ai toujours pas reçu ma commande {o}. Merci de me tenir au courant."),
    ("fr", "Le {p} ne s'allume plus après deux semaines. Je voudrais un échange."),
    ("it", "Buongiorno, vorrei cambiare l'indirizzo di consegna dell'ordine {o}."),
    ("nl", "Mijn {p} is kapot aangekomen. Graag een nieuwe sturen. {o}"),
    ("pl", "Dzień dobry, zamówienie {o} nie dotarło. Proszę o informację."),
    ("pt", "Olá, fui cobrado duas vezes pelo pedido {o}. Valor: {a}."),
    ("sv", "Hej! Jag vill avbryta min beställning {o}, tack."),
]

EXTRA = [
    "I've been a customer for 6 years.", "This is really frustrating.", "Thanks in advance.",
    "Photos attached.", "Please hurry.",
    "My phone number is +44 7700 900123 if that's easier.", "Not happy at all.",
    "Let me know asap", "Order was a gift, so it's kind of urgent.", "Ticket ref #88123 from last week.",
    "P.S. your website is really slow today.", "(sorry for my english)",
    "I paid with PayPal, not card.", "It's the second one I ordered, the first was fine.",
]

SUBJECTS = {
    "shipping": ["Where is my order", "Delivery problem", "parcel missing", "Late delivery", "Re: Your order has shipped", ""],
    "billing": ["Double charge", "Billing question", "Invoice needed", "WRONG CHARGE", "payment failed"],
    "returns_refunds": ["Return request", "Refund", "Refund still not received", "Re: Re: refund"],
    "technical_issue": ["Device not working", "App crash", "Bug report", "Error E21", "help"],
    "account_access": ["Can't log in", "Account locked", "Password reset", "Account hacked?"],
    "product_question": ["Question", "Product question", "quick question", "Voltage?"],
    "order_change": ["Change address", "Cancel order", "Change my order", "Gift note"],
    "complaint": ["Complaint", "Terrible service", "Final warning", "Still no answer!!!"],
    "feedback": ["Thank you!", "Feedback", "Suggestion", "Great product"],
    "safety": ["URGENT - safety issue", "Overheating!", "Dangerous charger"],
}

ADDRS = [
    "Hauptstraße 12, 10115 Berlin", "221B Baker Street, London NW1 6XE",
    "Calle Mayor 5, 3º izq, 28013 Madrid", "12 Rue de Rivoli, 75004 Paris",
    "1600 Amphitheatre Pkwy, Mountain View, CA 94043", "ul. Długa 7/3, 00-238 Warszawa",
]

SHORT = ["refund?", "where is my order", "???", "help", "ORD-481516 not arrived",
         "cancel pls", "doesnt work", "call me back", "Thx!", "see attachment"]


def order_id(ref):
    """An order reference as the schema normalises it: ORD- and its six digits."""
    return "ORD-" + re.search(r"\d{6}", ref).group()


def ticket_truth(order, name, language):
    return {"order_id": order, "customer_name": name, "language": language}


def ticket_text():
    """(kind, text, truth): truth is what the text says for sure (see make_tickets)."""
    if maybe(0.05):
        text = pick(SHORT)
        order = re.search(r"ORD-\d{6}", text)
        return "misc", text, ticket_truth(order and order.group(), None, "en")
    if maybe(0.1):
        lang, tmpl = pick(FOREIGN)
        # drawn in the order the format() arguments used to be evaluated in
        o = order_ref()
        body = tmpl.format(o=o, p=pick(T_PRODUCTS), a=amount_str(money(9, 400)))
        name = person() if maybe(0.6) else None
        truth = ticket_truth(order_id(o) if "{o}" in tmpl else None, name, lang)
        return "foreign", body + (f"\n{name}" if name else ""), truth
    kind = pick([k for k in TICKET_TEMPLATES if k != "safety"]) if not maybe(0.03) else "safety"
    parts = []
    # one order / product / amount per message, so multi-sentence tickets stay coherent
    o, p, a = order_ref(), pick(T_PRODUCTS), amount_str(money(5, 900))
    g = pick(GREET)
    if g:
        parts.append(g)
    n_body = R.choice([1, 1, 1, 2])
    chosen = R.sample(TICKET_TEMPLATES[kind], k=min(n_body, len(TICKET_TEMPLATES[kind])))
    for tmpl in chosen:
        parts.append(tmpl.format(o=o, p=p, a=a, d=R.randrange(3, 20), addr=pick(ADDRS)))
    if kind == "technical_issue" and maybe(0.4):
        parts.append(pick(["I already tried turning it off and on again.", "Reinstalled the app, no change.",
                           "Screenshots attached.", "Serial number SN-4471-0092-X."]))
    parts.extend(R.sample(EXTRA, k=R.choice([0, 0, 1, 1, 2, 3])))
    text = " ".join(parts) if maybe(0.7) else "\n".join(parts)
    text = typo(text, rate=pick([0.0, 0.02, 0.05, 0.1]))
    if maybe(0.15):
        text = text.lower()
    if maybe(0.05):
        text = text.upper()
    s = pick(SIGN)
    name = None
    if s:
        n = person() if maybe(0.7) else pick(FIRST)
        text += "\n\n" + s.format(n=n)
        name = n if "{n}" in s else None  # a signature without the name ("thx") names no one
    order = order_id(o) if any("{o}" in t for t in chosen) else None
    return kind, text, ticket_truth(order, name, "en")


LONG_TICKET = (
    "Hello,\n\nI am writing again regarding order ORD-204851 because, honestly, I have lost track "
    "of how many times I have explained this. On March 3rd I ordered the Orbit robot vacuum, "
    "the \"Pro\" bundle with the extra brushes, for €549.00. It arrived on the 9th, which was "
    "already two days later than promised, but fine. The first time I ran it, it mapped the "
    "living room, then stopped in the hallway with error E21 and wouldn't move again. I followed "
    "the troubleshooting guide: cleaned the sensors, reset to factory settings, updated the "
    "firmware through the app (which, by the way, crashed twice during the update). Nothing "
    "worked. I called your hotline on the 12th and was told someone would contact me within "
    "48 hours. Nobody did. I wrote an email on the 15th (ticket #88123) and got an automatic "
    "reply. On the 20th I used the chat; the agent (Kevin?) said a replacement would be sent. "
    "No replacement arrived, no tracking number, nothing. Meanwhile I have a €549 paperweight "
    "in my hallway and I've had to borrow my neighbour's vacuum cleaner. I would like one of "
    "two things, and I want it in writing: either a full refund of €549.00 including the "
    "shipping costs of €4.99, or a working replacement delivered by the end of next week, "
    "with tracking. If neither happens, I will file a chargeback with my credit card company "
    "and leave reviews everywhere I can. I have kept all the emails and chat transcripts. "
    "I really liked your brand before this, my KettlePro has worked flawlessly for three years, "
    "which makes this even more disappointing. Please, just have a human being read this and "
    "answer.\n\nRegards,\nMałgorzata Nowak-Lefèvre\nul. Długa 7/3, 00-238 Warszawa\n"
    "+48 600 123 456"
)


def make_tickets(n=300):
    rows = []
    ids = R.sample(range(10000, 99999), n)
    start = dt.datetime(2024, 3, 1, 8, 0, 0)
    for i in range(n):
        kind, text, truth = ticket_text()
        subj_pool = SUBJECTS.get(kind, ["", "Bestellung", "Pedido", "Commande", "(no subject)"])
        subject = pick(subj_pool)
        if maybe(0.1):
            subject = subject.upper()
        ts = start + dt.timedelta(minutes=R.randrange(0, 60 * 24 * 90))
        rows.append({"id": ids[i], "subject": subject, "text": text,
                     "received_at": ts.strftime("%Y-%m-%d %H:%M:%S"), "truth": truth})
    # hard cases
    rows[5]["text"] = ""
    rows[5]["subject"] = "(no subject)"
    rows[5]["truth"] = ticket_truth(None, None, "en")
    rows[17]["text"] = LONG_TICKET
    rows[17]["truth"] = ticket_truth("ORD-204851", "Małgorzata Nowak-Lefèvre", "en")
    rows[17]["subject"] = "FOURTH attempt - order ORD-204851, vacuum broken, no reply"
    rows[42]["text"] = ('He said "it\'s fine, just, like, wait" -- but it\'s NOT fine.\n'
                        'Order: ORD-733001, item: "Luma desk lamp, white", qty 2, total €79,80.\n'
                        "Please refund one lamp (€39,90).")
    rows[42]["truth"] = ticket_truth("ORD-733001", None, "en")
    rows[42]["subject"] = 'Re: "Your return, ORD-733001"'
    rows[63]["text"] = "注文 ORD-550912 がまだ届いていません。確認をお願いします。\n田中"
    rows[63]["subject"] = "配送について"
    rows[63]["truth"] = ticket_truth("ORD-550912", "田中", "ja")
    rows[88]["text"] = "😡😡😡 charged 3 times!!! ORD-900413 €29.99 x3 FIX IT"
    rows[88]["subject"] = "💳"
    rows[88]["truth"] = ticket_truth("ORD-900413", None, "en")
    rows.sort(key=lambda r: r["received_at"])
    with open(HERE / "tickets.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "subject", "text", "received_at"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    # Labelled: order_id (the reference rendered, normalised; null when no template named one),
    # customer_name (the signature's name; null when the message is not signed with one) and
    # language. Left out: category, priority and sentiment (the templates only hint at them,
    # and foreign, short and safety messages have none), product and refund_amount (a message
    # can name a product or an amount that no template placeholder put there, or ask for no
    # refund), and the free-form requested_action, summary and tags.
    write_labels_csv("tickets.csv", ["id", "order_id", "customer_name", "language"],
                     [{"id": r["id"], **r["truth"]} for r in rows])
    return len(rows)


# ---------------------------------------------------------------------------
# 2. Invoices
# ---------------------------------------------------------------------------

VENDORS = [
    # name, address lines, vat id (or None), currency, style, catalogue key
    ("Nordlicht Bürobedarf GmbH", ["Speicherstadt 14", "20457 Hamburg", "Germany"], "DE 281 734 962", "EUR", "de", "office"),
    ("Atelier Rousseau SARL", ["8 Rue des Tanneurs", "69001 Lyon", "France"], "FR 42 812345678", "EUR", "eu", "design"),
    ("Brightline IT Services Ltd", ["Unit 4, Riverside Park", "Leeds LS1 4AP", "United Kingdom"], "GB 293 8812 04", "GBP", "uk", "it"),
    ("Cascade Cloud Inc.", ["500 Pine St, Suite 1200", "Seattle, WA 98101", "USA"], None, "USD", "us", "saas"),
    ("Helvetic Präzision AG", ["Industriestrasse 22", "8005 Zürich", "Schweiz"], "CHE-112.334.556 MWST", "CHF", "de", "parts"),
    ("Kowalski & Syn Sp. z o.o.", ["ul. Przemysłowa 9", "61-001 Poznań", "Polska"], "PL 7781234567", "PLN", "eu", "parts"),
    ("Fjord Catering AB", ["Götgatan 31", "116 21 Stockholm", "Sverige"], "SE556677889901", "SEK", "eu", "catering"),
    ("Green Leaf Office Plants", ["77 Market Street", "Manchester M1 1WR"], None, "GBP", "uk", "plants"),
    ("Delgado Traducciones S.L.", ["Av. Diagonal 405", "08008 Barcelona", "España"], "ESB12345678", "EUR", "eu", "translation"),
    ("Summit Logistics LLC", ["1450 Industrial Blvd", "Denver, CO 80216"], None, "USD", "us", "freight"),
    ("Müller & Partner Steuerberatung", ["Königsallee 60", "40212 Düsseldorf"], "DE 119 283 746", "EUR", "de", "consulting"),
    ("Pixel Foundry Studio", ["3rd floor, 21 Camden High St", "London NW1 7JE"], "GB 118 2233 45", "GBP", "uk", "design"),
    ("Van Dijk Schoonmaak B.V.", ["Keizersgracht 210", "1016 DZ Amsterdam"], "NL853746291B01", "EUR", "eu", "cleaning"),
    ("Acme Hardware Supply Co.", ["PO Box 3321", "Austin, TX 78701"], None, "USD", "us", "office"),
]

CATALOGUE = {
    "office": [("A4 copy paper 80g, box of 5 reams", 18, 32), ("Toner cartridge HP 59A black", 60, 140),
               ("Ballpoint pens blue (pack of 50)", 6, 14), ("Ergonomic office chair", 180, 420),
               ("Whiteboard markers, assorted 12pk", 8, 15), ("Desk organiser, bamboo", 12, 30),
               ("Lever arch files A4 (10 pcs)", 9, 20)],
    "design": [("Logo redesign - concept phase", 400, 1500), ("Brand guidelines document", 600, 2400),
               ("Illustration, editorial (per piece)", 150, 450), ("Design hours", 65, 120),
               ("Revision round", 80, 200), ("Print-ready file preparation", 90, 250)],
    "it": [("Onsite support (hours)", 60, 110), ("Laptop Dell Latitude 5440", 850, 1300),
           ("Microsoft 365 Business Standard - 12 mo", 100, 130), ("Network switch 24-port", 150, 400),
           ("Remote monitoring, monthly", 25, 60), ("Cat6 patch cables 2m", 2, 6)],
    "saas": [("Pro plan - monthly subscription", 49, 299), ("Additional seats", 10, 25),
             ("Overage: API calls (per 1k)", 0.4, 2), ("Priority support add-on", 99, 199),
             ("Storage 500 GB block", 20, 45)],
    "parts": [("Stainless steel bolts M8x40 (100 pcs)", 12, 30), ("Ball bearing 6204-2RS", 3, 9),
              ("CNC machining service (hours)", 70, 140), ("Aluminium profile 40x40, 2m", 18, 40),
              ("Hydraulic seal kit", 25, 90), ("Shipping & handling", 10, 45)],
    "catering": [("Lunch buffet per person", 120, 260), ("Coffee & pastries per person", 45, 90),
                 ("Vegan platter", 400, 900), ("Staff service (hours)", 350, 500), ("Delivery fee", 150, 400)],
    "plants": [("Monstera deliciosa 120cm incl. pot", 45, 110), ("Monthly plant care visit", 60, 120),
               ("Snake plant, small", 12, 25), ("Replacement planter, ceramic", 20, 55)],
    "translation": [("Translation EN>ES (per word)", 0.06, 0.14), ("Proofreading (hours)", 30, 55),
                    ("Certified translation, per page", 25, 45), ("Urgency surcharge", 30, 120)],
    "freight": [("LTL freight Denver - Chicago", 600, 1800), ("Pallet storage (pallet/week)", 8, 15),
                ("Liftgate service", 75, 150), ("Fuel surcharge", 40, 250), ("Residential delivery", 60, 120)],
    "consulting": [("Buchhaltung Monat", 250, 700), ("Jahresabschluss 2023", 1200, 3500),
                   ("Lohnabrechnung je Mitarbeiter", 15, 35), ("Beratung (Std.)", 90, 180)],
    "cleaning": [("Kantoorschoonmaak per week", 180, 450), ("Glasbewassing", 80, 200),
                 ("Vloerbehandeling (m2)", 2, 6), ("Sanitair artikelen", 25, 70)],
}

CUSTOMERS = [
    ("Blue Harbor Analytics GmbH", "Am Sandtorkai 5, 20457 Hamburg"),
    ("Lindqvist Design Studio", "Hornsgatan 12, 118 20 Stockholm"),
    ("Patel & Co Accountants", "14 King Street, Leicester LE1 6RN"),
    ("Riverside Dental Clinic", "880 River Rd, Boise, ID 83702"),
    ("Café Zoë", "Rue Oberkampf 41, 75011 Paris"),
    ("Nakamura Robotics Europe B.V.", "Stationsplein 45, 3013 AK Rotterdam"),
    ("Fernández Hermanos S.A.", "Calle Larios 3, 29005 Málaga"),
    ("Ollie's Bike Repair", "2 Mill Lane, Bristol BS1 5AA"),
]

TERMS = {
    "de": ["Zahlbar innerhalb von 14 Tagen ohne Abzug", "Zahlungsziel: 30 Tage netto",
           "Sofort zahlbar", "2% Skonto bei Zahlung binnen 10 Tagen, 30 Tage netto"],
    "uk": ["Payment due within 30 days", "Net 30", "Due on receipt", "Net 14 - BACS only"],
    "us": ["Net 30", "Net 15", "Due upon receipt", "2/10 Net 30"],
    "eu": ["Net 30", "Payment within 14 days", "30 días fecha factura", "Paiement à 30 jours",
           "Betaling binnen 14 dagen", "Due on receipt"],
}
TAX = {"EUR": [Decimal("0.19"), Decimal("0.20"), Decimal("0.21"), Decimal("0.07")],
       "GBP": [Decimal("0.20"), Decimal("0")], "USD": [Decimal("0"), Decimal("0.0825"), Decimal("0.06")],
       "CHF": [Decimal("0.081")], "PLN": [Decimal("0.23")], "SEK": [Decimal("0.25"), Decimal("0.12")]}
BANK = {"EUR": "IBAN DE89 3704 0044 0532 0130 00  BIC COBADEFFXXX",
        "GBP": "Sort code 20-00-00  Acc 55779911", "USD": "ACH routing 102000021 acct 4400123987",
        "SEK": "Bankgiro 5050-1055", "PLN": "IBAN PL61 1090 1014 0000 0712 1981 2874",
        "CHF": "IBAN CH93 0076 2011 6238 5295 7"}
SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF", "PLN": "zł", "SEK": "kr"}

Q2 = Decimal("0.01")


def fmt_num(x, style):
    """Format a Decimal the way the vendor's locale would print it."""
    s = f"{x:,.2f}"
    if style == "comma":
        s = s.replace(",", "_").replace(".", ",").replace("_", ".")
    if R.random() < 0.2:  # some print without thousands separators
        s = s.replace(",", "") if "." in s[-3:] else s.replace(".", "")
    return s


MONTHS_EN = ["January", "February", "March", "May", "June", "July", "October", "December"]
MONTHS_DE = ["Januar", "Februar", "März", "Mai", "Juni", "Juli", "Oktober", "Dezember"]


def fmt_date(d, style):
    if style == "de":
        out = d.strftime(pick(["%d.%m.%Y", "%d.%m.%y", "%d. %B %Y"]))
        for en, de in zip(MONTHS_EN, MONTHS_DE, strict=True):
            out = out.replace(en, de)
        return out
    if style == "us":
        return d.strftime(pick(["%m/%d/%Y", "%B %d, %Y", "%b %d %Y"]))
    if style == "uk":
        return d.strftime(pick(["%d/%m/%Y", "%d %B %Y", "%d %b %Y"]))
    return d.strftime(pick(["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"]))


def ocr_noise(line):
    """Light OCR damage: random extra spaces, l/1 and O/0 confusion in labels only."""
    if R.random() < 0.15:
        line = line.replace("  ", "   ")
    if R.random() < 0.05:
        line = line.replace("Total", "T0tal").replace("TOTAL", "T0TAL")
    if R.random() < 0.05:
        line = line.replace("Invoice", "lnvoice")
    if R.random() < 0.1 and len(line) > 10:
        i = R.randrange(len(line))
        if line[i] == " ":
            line = line[:i] + "  " + line[i:]
    return line


def make_invoice(idx):
    vname, vaddr, vat, cur, style, cat = pick(VENDORS)
    cust, caddr = pick(CUSTOMERS)
    issue = dt.date(2024, 1, 1) + dt.timedelta(days=R.randrange(0, 365))
    has_due = maybe(0.7)
    due = issue + dt.timedelta(days=pick([14, 30, 30, 45, 60])) if has_due else None
    items = []
    for desc, lo, hi in R.sample(CATALOGUE[cat], k=min(R.randint(1, 6), len(CATALOGUE[cat]))):
        if "per word" in desc:
            qty = Decimal(R.randrange(800, 9000))
        elif "hours" in desc or "Std." in desc or "(m2)" in desc:
            qty = Decimal(R.randrange(2, 80)) / 2
        else:
            qty = Decimal(pick([1, 1, 1, 2, 3, 4, 5, 10, 12, 25]))
        unit = (Decimal(str(lo)) + (Decimal(str(hi)) - Decimal(str(lo))) * Decimal(R.random())).quantize(
            Decimal("0.01") if hi > 1 else Decimal("0.001"), ROUND_HALF_UP)
        if hi > 1:
            unit = unit.quantize(Q2)
        amt = (qty * unit).quantize(Q2, ROUND_HALF_UP)
        items.append((desc, qty, unit, amt))
    subtotal = sum((a for *_, a in items), Decimal("0"))
    rate = pick(TAX[cur])
    tax = (subtotal * rate).quantize(Q2, ROUND_HALF_UP)
    total = subtotal + tax
    number = pick(["{y}-{n:04d}", "RE{y}{n:05d}", "#{n}", "F-{y}/{n:03d}", "INV{n:06d}", "{n}"]).format(
        y=issue.year, n=R.randrange(1, 9999))
    sym = SYMBOL[cur]
    de = style == "de"
    # number locale is decided once per invoice: decimal comma for most continental vendors
    nstyle = "comma" if style in ("de", "eu") and maybe(0.85) else "point"
    L = []
    # vendor block
    L.append(vname.upper() if maybe(0.4) else vname)
    L.extend(vaddr)
    if maybe(0.5):
        L.append(pick(["Tel: +49 40 555 0192", "phone (303) 555-0147", "info@" + vname.split()[0].lower().strip(",&.") + ".example",
                       "www." + vname.split()[0].lower().strip(",&.") + ".example"]))
    if vat:
        L.append(("USt-IdNr.: " if de else pick(["VAT No: ", "VAT ID ", "Tax ID: ", "N.I.F. "])) + vat)
    L.append("")
    L.append(pick(["RECHNUNG", "Rechnung"]) if de else pick(["INVOICE", "Invoice", "TAX INVOICE", "Facture / Invoice"]))
    L.append("")
    bill = "Rechnungsempfänger:" if de else pick(["Bill to:", "BILL TO", "Customer:", "Invoice to"])
    L.append(bill)
    L.append(cust)
    L.extend(caddr.split(", ", 1))
    L.append("")
    lab_no = "Rechnungsnr." if de else pick(["Invoice No.", "Invoice #", "Invoice Number:", "No."])
    lab_dt = "Rechnungsdatum" if de else pick(["Date:", "Invoice Date", "Issue date", "Dated"])
    L.append(f"{lab_no} {number}" + " " * R.randrange(2, 12) + f"{lab_dt} {fmt_date(issue, style)}")
    if due:
        lab_due = "Fällig am" if de else pick(["Due Date:", "Due", "Payment due"])
        L.append(f"{lab_due} {fmt_date(due, style)}")
    if maybe(0.3):
        L.append(f"PO: {R.randrange(4500000000, 4599999999)}" if maybe(0.5) else f"Your ref: {pick(FIRST)}")
    L.append("")
    head = ("Pos  Beschreibung                     Menge   Einzelpreis     Betrag" if de else
            pick(["Description                          Qty     Unit Price      Amount",
                  "ITEM                    QTY   RATE    AMOUNT",
                  "#  Description                 Quantity  Price  Total"]))
    L.append(head)
    L.append(pick(["-" * 64, "=" * 50, "", "_" * 58]))
    for j, (desc, qty, unit, amt) in enumerate(items, 1):
        q = f"{qty.normalize():f}"
        if nstyle == "comma" and "." in q:
            q = q.replace(".", ",")
        pos = f"{j:<4} " if (de or maybe(0.3)) else ""
        pad1 = " " * max(1, 34 - len(desc) + R.randrange(-3, 4))
        pad2 = " " * R.randrange(2, 7)
        pad3 = " " * R.randrange(2, 9)
        cur_prefix = sym + " " if maybe(0.3) else ""
        up = fmt_num(unit, nstyle) if unit >= 1 else (str(unit).replace(".", ",") if nstyle == "comma" else str(unit))
        line = f"{pos}{desc}{pad1}{q}{pad2}{cur_prefix}{up}{pad3}{cur_prefix}{fmt_num(amt, nstyle)}"
        if len(desc) > 30 and maybe(0.3):  # wrapped description
            cut = desc.rfind(" ", 0, 26)
            line = f"{pos}{desc[:cut]}\n{' ' * len(pos)}{desc[cut + 1:]}{pad1}{q}{pad2}{up}{pad3}{fmt_num(amt, nstyle)}"
        L.append(ocr_noise(line))
    L.append("")
    pct = f"{(rate * 100).normalize():f}".replace(".", "," if nstyle == "comma" else ".")
    lab_sub = "Zwischensumme netto" if de else pick(["Subtotal", "Sub-total", "Net amount", "SUBTOTAL"])
    lab_tax = f"zzgl. {pct}% MwSt." if de else pick([f"VAT {pct}%", f"Tax ({pct}%)", f"Sales tax {pct}%", f"TVA/IVA {pct}%"])
    if rate == 0:
        lab_tax = pick(["Tax 0%", "VAT exempt (reverse charge)", "Sales tax: N/A"])
    lab_tot = "Gesamtbetrag" if de else pick(["TOTAL", "Total due", "Amount Due", "Total"])
    w = R.randrange(38, 56)
    def money_s(x):
        return (f"{fmt_num(x, nstyle)} {sym}" if style in ("de", "eu") else f"{sym}{fmt_num(x, nstyle)}") if maybe(0.6) else f"{fmt_num(x, nstyle)} {cur}"
    for lab, val in ((lab_sub, subtotal), (lab_tax, tax), (lab_tot, total)):
        L.append(ocr_noise(" " * R.randrange(10, 30) + lab + " " * max(2, w - len(lab)) + money_s(val)))
    if maybe(0.4):
        L.append(f"All amounts in {cur}" if not de else f"Alle Beträge in {cur}")
    L.append("")
    terms = pick(TERMS[style]) if maybe(0.8) else None
    if terms:
        L.append(("Zahlungsbedingungen: " if de else pick(["Terms: ", "Payment terms: ", ""])) + terms)
    if maybe(0.6):
        L.append(BANK[cur])
    if maybe(0.3):
        L.append(pick(["Thank you for your business!", "Vielen Dank für Ihren Auftrag.",
                       "Page 1 of 1", "Merci !", "Questions? billing@example.com"]))
    text = "\n".join(L)
    if maybe(0.1):  # OCR lost line structure
        text = "  ".join(text.split("\n"))
    invoice_id = f"INV-2024-{idx:04d}"
    # every field of the schema: the invoice is generated from exactly these values
    truth = {
        "invoice_id": invoice_id,
        "vendor": {"name": vname, "address": ", ".join(vaddr),
                   "vat_id": vat.replace(" ", "") if vat else None},
        "invoice_number": number,
        "issue_date": issue.isoformat(),
        "due_date": due.isoformat() if due else None,
        "currency": cur,
        "line_items": [{"description": d, "quantity": str(q), "unit_price": str(u),
                        "amount": str(a)} for d, q, u, a in items],
        "subtotal": str(subtotal),
        "tax": str(tax),
        "total": str(total),
        "payment_terms": terms,
    }
    return {"invoice_id": invoice_id, "raw_text": text}, truth


def make_invoices(n=200):
    made = [make_invoice(i) for i in range(1, n + 1)]
    rows = [row for row, _ in made]
    # hard cases: empty scan, and a badly truncated one
    rows[9]["raw_text"] = ""
    rows[120]["raw_text"] = rows[120]["raw_text"][: len(rows[120]["raw_text"]) // 3]
    pl.DataFrame(rows, schema={"invoice_id": pl.Utf8, "raw_text": pl.Utf8}).write_parquet(
        HERE / "invoices.parquet")
    # Labelled: every field, numbers as exact decimal text. Left out: the two hard cases, whose
    # scan no longer shows the invoice (rows 10 and 121: empty, and cut to a third).
    LABELS.mkdir(exist_ok=True)
    with open(LABELS / "invoices.jsonl", "w", encoding="utf-8") as f:
        for i, (_, truth) in enumerate(made):
            if i not in (9, 120):
                f.write(json.dumps(truth, ensure_ascii=False) + "\n")
    return len(rows)


# ---------------------------------------------------------------------------
# 3. Product listings (+ PNG images)
# ---------------------------------------------------------------------------

def png_bytes(w, h, pixel):
    """Minimal RGB PNG writer: pixel(x, y) -> (r, g, b)."""
    raw = bytearray()
    for y in range(h):
        raw.append(0)  # filter type None
        for x in range(w):
            raw.extend(pixel(x, y))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


COLOR_RGB = {
    "black": (20, 20, 20), "white": (245, 245, 245), "red": (200, 30, 40), "navy": (20, 30, 90),
    "blue": (40, 90, 210), "green": (40, 150, 70), "grey": (128, 128, 128), "beige": (220, 200, 160),
    "pink": (240, 150, 180), "yellow": (240, 210, 40), "orange": (240, 130, 30), "purple": (120, 50, 160),
    "brown": (110, 70, 40), "silver": (190, 190, 200), "olive": (110, 120, 50), "teal": (30, 130, 130),
}


def product_image(colors):
    c = [COLOR_RGB[x] for x in colors] or [(200, 200, 200)]
    bg = (250, 250, 250)
    pattern = R.randrange(4)

    def px(x, y):
        if pattern == 0:  # centred square "product" on white background
            return c[0] if 14 <= x < 50 and 14 <= y < 50 else bg
        if pattern == 1:  # vertical colour stripes: one per available colour
            return c[(x * len(c)) // 64]
        if pattern == 2:  # circle
            return c[0] if (x - 32) ** 2 + (y - 32) ** 2 < 22 ** 2 else bg
        return c[((x // 16) + (y // 16)) % len(c)]  # checker

    return png_bytes(64, 64, px)


PRODUCTS = [
    # category, brands, nouns, attrs (key -> options), dims?, price range
    ("electronics", ["Sony", "JBL", "Anker", "Bose", "Xiaomi", None],
     ["Bluetooth speaker", "wireless earbuds", "noise cancelling headphones", "USB-C charger 65W", "smart plug (2-pack)"],
     {"battery_life": ["10 h", "24 h", "30h", "up to 40 hours"], "connectivity": ["Bluetooth 5.3", "Bluetooth 5.0", "Wi-Fi"],
      "waterproof": ["IPX4", "IPX7", "IP67"]}, True, (15, 350)),
    ("computers", ["Logitech", "Dell", "Lenovo", "Keychron", "Samsung", None],
     ["mechanical keyboard", "wireless mouse", "27\" monitor", "laptop stand", "1TB portable SSD", "ThinkPad T14 laptop"],
     {"layout": ["US", "UK", "DE QWERTZ", "ISO Nordic"], "interface": ["USB-C", "USB 3.2", "HDMI + DP"],
      "ram": ["16GB", "32 GB"], "switches": ["brown", "red", "blue"]}, True, (20, 1400)),
    ("phones", ["Apple", "Samsung", "Google", "Fairphone", "Nokia"],
     ["iPhone 13", "Galaxy S22", "Pixel 7a", "Fairphone 4", "phone case", "screen protector (3 pack)"],
     {"storage": ["64GB", "128 GB", "256GB"], "battery_health": ["87%", "91%", "100%"], "sim": ["dual SIM", "eSIM"]},
     False, (8, 900)),
    ("home_kitchen", ["Tefal", "KitchenAid", "IKEA", "Bialetti", "Fiskars", "Le Creuset", None],
     ["non-stick frying pan 28cm", "moka pot 6 cups", "stand mixer", "cast iron casserole", "chef's knife 20 cm", "glass storage jars set"],
     {"material": ["stainless steel", "cast iron", "aluminium", "borosilicate glass", "ceramic"], "capacity": ["1.5 l", "4.8 L", "300ml", "6 cups"],
      "dishwasher_safe": ["yes", "no"], "induction": ["yes", "no"]}, True, (9, 600)),
    ("furniture", ["IKEA", "Hay", "Muuto", None, None],
     ["oak side table", "bookshelf KALLAX 4x4", "velvet armchair", "standing desk frame", "bar stool (set of 2)"],
     {"material": ["solid oak", "particle board", "steel", "velvet", "walnut veneer"], "assembly": ["required", "pre-assembled"],
      "max_load": ["50 kg", "120kg"]}, True, (25, 900)),
    ("clothing", ["Levi's", "Patagonia", "Uniqlo", "H&M", "Zara", "Arc'teryx", None],
     ["denim jacket", "merino wool sweater", "down jacket", "linen shirt", "hoodie", "rain jacket"],
     {"size": ["XS", "S", "M", "L", "XL", "EU 38", "W32 L34"], "material": ["100% cotton", "merino wool", "recycled polyester", "linen"],
      "fit": ["regular", "slim", "oversized"]}, False, (10, 400)),
    ("shoes", ["Nike", "Adidas", "Salomon", "Birkenstock", "Dr. Martens", "Veja"],
     ["running shoes", "trail runners", "Arizona sandals", "1460 boots", "sneakers"],
     {"size": ["EU 42", "UK 8", "US 10", "EU 37.5", "43"], "material": ["leather", "mesh", "suede", "vegan leather"]},
     False, (20, 220)),
    ("beauty", ["The Ordinary", "Nivea", "L'Oréal", "CeraVe", "Weleda"],
     ["niacinamide serum 30ml", "moisturising cream", "sunscreen SPF50", "hair dryer 2000W", "perfume 50ml EDP"],
     {"volume": ["30 ml", "50ml", "100 ml", "200ml"], "skin_type": ["all", "dry", "sensitive", "oily"]}, False, (5, 120)),
    ("toys_games", ["LEGO", "Ravensburger", "Hasbro", "Playmobil", "Kosmos"],
     ["LEGO Technic set 42115", "1000 piece puzzle", "Monopoly classic", "wooden train set", "Catan board game"],
     {"age": ["3+", "8+", "10+", "18+"], "pieces": ["1000", "3696", "52"], "players": ["2-4", "3-4", "2-6"]}, True, (10, 450)),
    ("sports_outdoors", ["Decathlon", "Osprey", "Garmin", "MSR", "Black Diamond", None],
     ["hiking backpack 40L", "yoga mat", "GPS watch Forerunner 255", "2-person tent", "dumbbells 2x10kg", "trekking poles"],
     {"capacity": ["40 L", "28l", "65 litres"], "weight": ["1.2 kg", "850 g", "2x10kg", "310g"], "material": ["ripstop nylon", "TPE", "aluminium", "carbon"]},
     True, (12, 500)),
    ("books", [None],
     ["Dune - Frank Herbert (paperback)", "The Pragmatic Programmer 2nd ed.", "Harry Potter box set", "Atomic Habits", "Der Process - Kafka"],
     {"format": ["paperback", "hardcover", "box set"], "language": ["English", "German"], "isbn": ["978-0441172719", "978-0135957059"]},
     False, (4, 90)),
    ("garden_tools", ["Gardena", "Bosch", "Fiskars", "Husqvarna"],
     ["cordless hedge trimmer", "garden hose 25m", "pruning shears", "robotic lawn mower", "leaf blower"],
     {"power": ["18V", "36 V", "1800W"], "battery_included": ["yes", "no"], "length": ["25 m", "50 m"]}, True, (12, 1100)),
]

EMOJI = ["🔥", "✨", "✅", "💯", "🚚", "⭐⭐⭐⭐⭐", "📦", "👍", "🎁", "‼️"]
CONDITIONS = [("new", ["Brand new, sealed", "NEW in box", "neu & originalverpackt", "nuevo", "", "", ""]),
              ("used", ["Used - good condition", "gently used", "open box, like new", "used, minor scratches",
                        "Pre-owned", "gebraucht, guter Zustand"]),
              ("refurbished", ["Refurbished (grade A)", "Renewed", "factory reconditioned", "refurb, 12 month warranty"])]
STOCK_IN = ["In stock", "ships in 24h", "only 2 left!", "Available", "", "", "ready to ship 🚚"]
STOCK_OUT = ["SOLD OUT", "currently out of stock", "pre-order only, ships in March", "Ausverkauft"]


def price_text(amount, cur):
    a = f"{amount:.2f}"
    if cur == "EUR":
        return pick([f"€{a}", f"{a.replace('.', ',')} €", f"{a} EUR", f"EUR {a.replace('.', ',')}"])
    if cur == "USD":
        return pick([f"${a}", f"{a} USD", f"US$ {a}"])
    if cur == "GBP":
        return pick([f"£{a}", f"{a} GBP"])
    return f"{a} {cur}"


def dims(length, width, height, unit):
    return {"length": str(length), "width": str(width),
            "height": None if height is None else str(height), "unit": unit}


def dims_text(cat):
    """(text, truth): each format is picked together with the dimensions it states."""
    if cat in ("furniture",):
        ln, w, h = R.randrange(40, 160), R.randrange(30, 80), R.randrange(40, 120)
        cm = dims(ln, w, h, "cm")
        return pick([(f"{ln} x {w} x {h} cm", cm), (f"Dimensions: {ln}x{w}x{h}cm", cm), (f"L{ln} W{w} H{h} (cm)", cm),
                     (f"{ln*10} x {w*10} x {h*10} mm", dims(ln * 10, w * 10, h * 10, "mm"))])
    ln, w, h = R.randrange(5, 60), R.randrange(3, 40), R.randrange(1, 30)
    if maybe(0.3):
        li, wi, hi = f"{ln/2.5:.1f}", f"{w/2.5:.1f}", f"{h/2.5:.1f}"
        return pick([(f"{li} x {wi} x {hi} in", dims(li, wi, hi, "in")), (f"{li}\" x {wi}\"", dims(li, wi, None, "in"))])
    cm = dims(ln, w, h, "cm")
    return pick([(f"{ln} x {w} x {h} cm", cm), (f"size {ln}x{w}cm", dims(ln, w, None, "cm")), (f"{ln}*{w}*{h}cm", cm),
                 (f"Maße: {ln} x {w} x {h} cm", cm)])


def make_products(n=250):
    img_dir = HERE / "images"
    img_dir.mkdir(exist_ok=True)
    for old in img_dir.glob("*.png"):
        old.unlink()
    rows, truths = [], []
    image_idx = set(R.sample(range(n), k=n // 5))
    for i in range(n):
        cat, brands, nouns, attrs, has_dims, (lo, hi) = pick(PRODUCTS)
        brand = pick(brands)
        noun = pick(nouns)
        refurbishable = cat in ("electronics", "computers", "phones", "home_kitchen", "garden_tools")
        cond, cond_texts = R.choices(CONDITIONS, weights=[6, 3, 1 if refurbishable else 0])[0]
        n_colors = R.choice([0, 1, 1, 2, 3, 4, 6]) if cat not in ("books", "beauty") else 0
        colors = R.sample(list(COLOR_RGB), k=n_colors)
        in_stock = maybe(0.85)
        cur = R.choices(["EUR", "USD", "GBP", "CHF", "SEK"], weights=[5, 3, 2, 0.5, 0.5])[0]
        amount = money(lo, hi)
        title_bits = [b for b in [brand, noun] if b]
        if colors and maybe(0.5):
            title_bits.append("- " + colors[0])
        if cond != "new" and maybe(0.5):
            title_bits.append(f"({cond.upper()})")
        if maybe(0.2):
            title_bits.insert(0, pick(EMOJI))
        title = " ".join(title_bits)
        if maybe(0.1):
            title = title.upper()
        # description
        parts = []
        c_txt = pick(cond_texts)
        if c_txt:
            parts.append(c_txt + pick([".", "!", " -", ""]))
        price = None
        if maybe(0.85):
            price = {"amount": str(amount), "currency": cur}
            parts.append(pick(["Price: ", "Only ", "", "Now ", "Preis: ", "asking "]) + price_text(amount, cur)
                         + pick(["", " incl. VAT", " + shipping", " ono", " (was " + price_text(amount * Decimal("1.3"), cur) + ")"]))
        chosen = R.sample(list(attrs), k=R.randint(1, len(attrs)))
        spec_style = R.randrange(3)
        specs = [(k, pick(attrs[k])) for k in chosen]
        if spec_style == 0:
            parts.append(" | ".join(f"{k.replace('_', ' ').title()}: {v}" for k, v in specs))
        elif spec_style == 1:
            parts.append("\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in specs))
        else:
            parts.append(", ".join(f"{v} {k.replace('_', ' ')}" if k != "size" else f"size {v}" for k, v in specs))
        if colors:
            parts.append(pick(["Colours: ", "Available in ", "Color: ", "Farbe: "]) + pick([", ", " / ", " and "]).join(colors))
        dimensions = None
        if has_dims and maybe(0.6):
            text, dimensions = dims_text(cat)
            parts.append(text)
        parts.append(pick(STOCK_IN) if in_stock else pick(STOCK_OUT))
        if maybe(0.3):
            parts.append(pick(["Smoke-free home.", "No returns.", "Free shipping over €50!",
                               "Pickup in Berlin-Kreuzberg possible", "Fast shipping worldwide 🌍",
                               "Message me for bundle deals", "Original receipt included",
                               "Gift wrapping available 🎁", "Warranty until 08/2025"]))
        if maybe(0.3):
            parts.insert(R.randrange(len(parts) + 1), pick(EMOJI))
        desc = pick([" ", "\n", " ", ". "]).join(p for p in parts if p)
        desc = typo(desc, rate=pick([0, 0, 0.02, 0.06]))
        image = ""
        sku = f"SKU-{R.choice('ABCDEFGHJK')}{i + 1:04d}"
        if i in image_idx:
            image = f"images/p{i + 1:03d}.png"
            (HERE / image).write_bytes(product_image(colors))
        rows.append({"sku": sku, "title": title, "description": desc, "image": image})
        truths.append({"sku": sku, "brand": brand, "category": cat, "condition": cond,
                       "in_stock": in_stock, "colors": colors, "price": price,
                       "dimensions": dimensions})
    # hard cases
    rows[3]["description"] = ""
    rows[11]["description"] = 'Seller says: "like new, only used twice"; box has a dent, comma, "quotes"\nand a newline.'
    rows[30]["description"] = "see photo" if rows[30]["image"] else "see title"
    rows[77]["title"] = "Ｆｕｌｌ-width ＢＲＡＮＤ name ☕ Kaffeemühle – neuwertig"
    rows[77]["description"] = "Kaffeemühle, Keramikmahlwerk, 40 Mahlstufen. Preis: 39,00 € VB. Farbe: schwarz. Abholung in München."
    rows[150]["description"] = ("Vintage lot: " + "; ".join(
        f"item {k}: {pick(['mug', 'plate', 'bowl', 'vase'])} ({pick(list(COLOR_RGB))})" for k in range(60))
        + ". Everything must go, price for the whole lot £120, no singles.")
    with open(HERE / "products.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["sku", "title", "description", "image"])
        w.writeheader()
        w.writerows(rows)
    # Labelled: brand, category, condition, in_stock, colors, price and dimensions (null when
    # the listing does not state them). Left out: attributes (a title can state more specs
    # than the ones generated, e.g. "hiking backpack 40L"), and the hard cases above, whose
    # texts were replaced (rows 4, 12, 31, 78 and 151).
    header = ["sku", "brand", "category", "condition", "in_stock", "colors", "price.amount",
              "price.currency", "dimensions.length", "dimensions.width", "dimensions.height",
              "dimensions.unit"]
    flat = []
    for i, t in enumerate(truths):
        if i in (3, 11, 30, 77, 150):
            continue
        row = {k: v for k, v in t.items() if k not in ("price", "dimensions")}
        for group in ("price", "dimensions"):
            for h in header:
                if h.startswith(group + "."):
                    row[h] = (t[group] or {}).get(h.split(".", 1)[1])
        flat.append(row)
    write_labels_csv("products.csv", header, flat)
    return len(rows), len(image_idx)


# ---------------------------------------------------------------------------
# 4. Demo
# ---------------------------------------------------------------------------

def contact(name, email, company, urgent):
    return {"name": name, "email": email, "company": company, "urgent": urgent}


# (message, what it says): the message is rendered from the truth, so the two cannot drift apart
DEMO = [
    ("Hi, this is {name} from {company} ({email}). Could you send me your price list for 2025?",
     contact("Anna Berg", "anna.berg@northwind.example", "Northwind Traders", False)),
    ("URGENT: our production server is down since 7am, please call back asap. - {name}, {company}",
     contact("Tom Walsh", None, "Brightline IT", True)),
    ("hey its {name}, just wanted to ask if the workshop on friday is still on?",
     contact("jose", None, None, False)),
    ("Dear team, I'm {name} ({email}). We'd like a demo of the reporting module and info on SSO.",
     contact("Priya Patel", "priya@patel-co.example", None, False)),
    ("{name} here. Invoice 2291 seems to be charged twice, can you check? Not urgent.",
     contact("Wei Nguyen", None, None, False)),
    ("Bonjour, {name} de {company}. Nous voudrions commander 20 kg de café. {email}",
     contact("Chloé Dubois", "chloe@cafezoe.example", "Café Zoë", False)),
    ("Need the signed contract back TODAY before 5pm or we lose the slot. {name}, {company}",
     contact("Marco Rossi", None, "Rossi Costruzioni", True)),
    ("Thanks for the great onboarding session! Best, {name}",
     contact("Liam", None, None, False)),
    ("From: {name} <{email}>\nCan we move our appointment to next week? Also, do you support HL7?",
     contact("Fatima Khan", "f.khan@riverside-dental.example", None, False)),
    ("{name} here ({company}). Menu feedback + dietary options + delivery times for the March event.",
     contact("Sven", None, "Fjord Catering", False)),
]


def make_demo():
    with open(HERE / "demo.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i, (t, truth) in enumerate(DEMO, 1):
            w.writerow([i, t.format(**truth)])
    # Labelled: name, email, company, urgent. Left out: topics (free-form; no single truth).
    write_labels_csv("demo.csv", ["id", "name", "email", "company", "urgent"],
                     [{"id": i, **truth} for i, (_, truth) in enumerate(DEMO, 1)])
    return len(DEMO)


if __name__ == "__main__":
    print("tickets.csv     ", make_tickets())
    print("invoices.parquet", make_invoices())
    n, k = make_products()
    print("products.csv    ", n, f"({k} images)")
    print("demo.csv        ", make_demo())
