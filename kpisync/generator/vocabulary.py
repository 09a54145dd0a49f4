"""Word lists the generated org is made of: places, names, sources, stages.

Values that a connector would copy "as is" (lead sources, lead statuses, stage
labels, case fields) use Salesforce's stock picklist values, so the sandbox CRMs
can hand them out unchanged and the YAML mappings in the demo config map them
exactly as they would map a real org (canonical-model.md: `lead_source`,
`lead_status`, `stage` are "as is").
"""

from __future__ import annotations

# region -> (UTC offset in hours used for business hours, countries)
# country -> (weight, ((state or None, city), ...))
REGIONS: dict[str, tuple[int, dict[str, tuple[int, tuple[tuple[str | None, str], ...]]]]] = {
    "na": (
        -6,
        {
            "US": (
                9,
                (
                    ("CA", "San Francisco"),
                    ("CA", "Los Angeles"),
                    ("NY", "New York"),
                    ("TX", "Austin"),
                    ("TX", "Dallas"),
                    ("WA", "Seattle"),
                    ("MA", "Boston"),
                    ("IL", "Chicago"),
                    ("GA", "Atlanta"),
                    ("CO", "Denver"),
                ),
            ),
            "CA": (2, (("ON", "Toronto"), ("BC", "Vancouver"), ("QC", "Montreal"))),
        },
    ),
    "emea": (
        1,
        {
            "GB": (4, ((None, "London"), (None, "Manchester"), (None, "Edinburgh"))),
            "DE": (3, ((None, "Berlin"), (None, "Munich"), (None, "Hamburg"))),
            "FR": (2, ((None, "Paris"), (None, "Lyon"))),
            "NL": (1, ((None, "Amsterdam"), (None, "Rotterdam"))),
            "ES": (1, ((None, "Madrid"), (None, "Barcelona"))),
            "SE": (1, ((None, "Stockholm"),)),
            "IE": (1, ((None, "Dublin"),)),
            "AE": (1, ((None, "Dubai"),)),
            "ZA": (1, ((None, "Johannesburg"), (None, "Cape Town"))),
        },
    ),
    "apac": (
        8,
        {
            "AU": (3, (("NSW", "Sydney"), ("VIC", "Melbourne"), ("QLD", "Brisbane"))),
            "JP": (2, ((None, "Tokyo"), (None, "Osaka"))),
            "SG": (2, ((None, "Singapore"),)),
            "IN": (2, (("KA", "Bangalore"), ("MH", "Mumbai"))),
            "NZ": (1, ((None, "Auckland"),)),
        },
    ),
    "latam": (
        -3,
        {
            "BR": (4, (("SP", "São Paulo"), ("RJ", "Rio de Janeiro"))),
            "MX": (3, ((None, "Mexico City"), (None, "Monterrey"))),
            "AR": (1, ((None, "Buenos Aires"),)),
            "CL": (1, ((None, "Santiago"),)),
            "CO": (1, ((None, "Bogotá"),)),
        },
    ),
}
# Share of prospects and accounts per region.
REGION_WEIGHTS = {"na": 45, "emea": 30, "apac": 15, "latam": 10}

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Alice",
    "Amara",
    "Ana",
    "Andrea",
    "Arjun",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Chloe",
    "Daniel",
    "Diego",
    "Elena",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Isaac",
    "Ivan",
    "Jack",
    "James",
    "Jin",
    "Julia",
    "Kai",
    "Kenji",
    "Laura",
    "Leo",
    "Lina",
    "Lucas",
    "Maria",
    "Mateo",
    "Maya",
    "Mia",
    "Nadia",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Paula",
    "Priya",
    "Rafael",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tariq",
    "Tom",
    "Uma",
    "Victor",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Abe",
    "Adams",
    "Ahmed",
    "Alvarez",
    "Bauer",
    "Becker",
    "Brown",
    "Chen",
    "Costa",
    "Cruz",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Gomez",
    "Gupta",
    "Hansen",
    "Hughes",
    "Ito",
    "Jensen",
    "Johnson",
    "Kim",
    "Klein",
    "Kumar",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Muller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Torres",
    "Wagner",
    "Walker",
    "Wang",
    "Weber",
    "Wilson",
    "Wong",
    "Young",
    "Zhang",
]

COMPANY_WORDS = [
    "Acme",
    "Apex",
    "Atlas",
    "Aurora",
    "Beacon",
    "Blue",
    "Bright",
    "Cedar",
    "Cobalt",
    "Crest",
    "Delta",
    "Echo",
    "Ember",
    "Falcon",
    "Frontier",
    "Granite",
    "Harbor",
    "Helix",
    "Horizon",
    "Iron",
    "Juniper",
    "Keystone",
    "Lumen",
    "Maple",
    "Meridian",
    "Nimbus",
    "North",
    "Nova",
    "Oak",
    "Orbit",
    "Peak",
    "Pine",
    "Pioneer",
    "Prism",
    "Quantum",
    "Red",
    "River",
    "Sage",
    "Sierra",
    "Silver",
    "Spark",
    "Summit",
    "Terra",
    "Tide",
    "Vertex",
    "Vista",
    "Willow",
    "Zenith",
]
COMPANY_KINDS = [
    "Analytics",
    "Bank",
    "Biotech",
    "Capital",
    "Cloud",
    "Consulting",
    "Dynamics",
    "Energy",
    "Foods",
    "Freight",
    "Health",
    "Insurance",
    "Labs",
    "Logistics",
    "Media",
    "Medical",
    "Motors",
    "Networks",
    "Pharma",
    "Retail",
    "Robotics",
    "Software",
    "Solar",
    "Systems",
    "Telecom",
    "Textiles",
    "Travel",
    "Ventures",
]
COMPANY_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "SA", "Group", "Co", "Holdings")
INDUSTRIES = (
    "Technology",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Media",
    "Energy",
    "Transportation",
    "Consulting",
    "Telecommunications",
    "Insurance",
)

# channel -> (share of new people, P(lead->mql), P(mql->sql), P(sql->opportunity),
#             win-rate multiplier, lead sources as the CRM spells them)
CHANNELS: dict[str, tuple[float, float, float, float, float, tuple[str | None, ...]]] = {
    "inbound": (0.33, 0.55, 0.45, 0.65, 1.0, ("Web", "Content Download", "Organic Search")),
    "outbound": (0.25, 0.22, 0.45, 0.60, 0.8, ("Cold Call", "Outbound Prospecting")),
    "referral": (0.09, 0.75, 0.60, 0.75, 1.6, ("Partner Referral", "Customer Referral")),
    "event": (0.11, 0.50, 0.40, 0.60, 1.0, ("Trade Show", "Webinar", "Seminar - Internal")),
    "paid": (0.17, 0.45, 0.35, 0.60, 0.9, ("Google AdWords", "LinkedIn Ads", "Paid Social")),
    "other": (0.05, 0.30, 0.35, 0.55, 0.9, ("Other", "Phone Inquiry", None)),
}
# Monthly spend campaigns: (campaign, channel, cost per new person in that channel).
# Event budgets are booked per quarter, so their rows straddle months on purpose.
CAMPAIGNS = (
    ("Website & content", "inbound", 35.0),
    ("SEO agency retainer", "inbound", 12.0),
    ("Outbound tooling & data", "outbound", 28.0),
    ("Referral rewards", "referral", 45.0),
    ("Trade shows & webinars", "event", 260.0),
    ("Google Ads", "paid", 95.0),
    ("LinkedIn Ads", "paid", 70.0),
    ("Miscellaneous", "other", 20.0),
)

# Salesforce's stock opportunity stages, in order; the fourth is the proposal stage.
OPEN_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
)
PROPOSAL_STAGE = "Proposal/Price Quote"
WON_STAGE, LOST_STAGE = "Closed Won", "Closed Lost"
# Expansion and renewal deals skip the discovery stages.
SHORT_STAGES = ("Qualification", "Proposal/Price Quote", "Negotiation/Review")
PIPELINES = {
    "new_business": "New Business",
    "upsell": "Expansion",
    "cross_sell": "Expansion",
    "renewal": "Renewals",
}

LEAD_STATUS_OPEN = "Open - Not Contacted"
LEAD_STATUS_WORKING = "Working - Contacted"
LEAD_STATUS_MQL = "Marketing Qualified"
LEAD_STATUS_SQL = "Sales Qualified"
LEAD_STATUS_NURTURE = "Nurturing"
LEAD_STATUS_DEAD = "Closed - Not Converted"
LEAD_STATUS_CONVERTED = "Closed - Converted"

CASE_PRIORITIES = (("Low", 30), ("Medium", 45), ("High", 20), ("Critical", 5))
CASE_ORIGINS = (("Email", 45), ("Web", 25), ("Phone", 20), ("Chat", 10))
CASE_SUBJECTS = (
    "Login issue",
    "Billing question",
    "Integration error",
    "Feature request",
    "Data export",
    "Performance",
    "User provisioning",
    "Report not loading",
)

CALL_SUBJECTS = ("Call", "Intro call", "Follow-up call", "Discovery call", "Check-in call")
EMAIL_SUBJECTS = (
    "Intro",
    "Follow-up",
    "Quick question",
    "Proposal",
    "Re: pricing",
    "Case study",
    "Next steps",
)
MEETING_SUBJECTS = (
    "Discovery meeting",
    "Demo",
    "Quarterly business review",
    "Pricing review",
    "Kick-off",
)
TASK_SUBJECTS = ("Send proposal", "Update CRM", "Prepare demo", "Research account")
NOTE_SUBJECTS = ("Call notes", "Meeting notes", "Account plan")
