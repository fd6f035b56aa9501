/* sandbox_data.c -- deterministic synthetic KYC/KYB verification data for the
 * sandbox */
#include "sandbox_data.h"

#include <stdio.h>
#include <string.h>

#include "canon.h"
#include "utf8.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Random numbers                                                            */

/* Length in bytes of the UTF-8 character at the start of the NUL-terminated
 * @p s (1 for a stray byte, 0 for ""): never past the NUL, never inside a
 * character. */
static int utf8_char_len(const char *s)
{
        size_t len = strnlen(s, 4), n;

        if (!len)
                return 0;
        n = kb_utf8_next((const unsigned char *)s, len, NULL);
        return n ? (int)n : 1;
}

static uint64_t splitmix64(uint64_t *x)
{
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

void kb_rng_seed(kb_rng_t *rng, uint64_t seed)
{
        int i;

        /* splitmix64 never yields four zero words, the one forbidden state */
        for (i = 0; i < 4; i++)
                rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
        return (x << k) | (x >> (64 - k));
}

uint64_t kb_rng_next(kb_rng_t *rng)
{
        uint64_t *s = rng->s;
        uint64_t result = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;

        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

uint64_t kb_rng_range(kb_rng_t *rng, uint64_t n)
{
        uint64_t threshold, r;

        if (n == 0)
                return 0;
        /* reject the lowest (2^64 mod n) values: the rest split evenly */
        threshold = (0 - n) % n;
        do {
                r = kb_rng_next(rng);
        } while (r < threshold);
        return r % n;
}

void kb_rng_uuid4(kb_rng_t *rng, char out[37])
{
        unsigned char b[16];
        char hex[33];
        uint64_t hi = kb_rng_next(rng), lo = kb_rng_next(rng);
        int i;

        for (i = 0; i < 8; i++) {
                b[i] = (unsigned char)(hi >> (56 - 8 * i));
                b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
        }
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        kb_hex(b, sizeof(b), hex);
        snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
                 hex + 16, hex + 20);
}

/* ------------------------------------------------------------------------ */
/* Built-in data: plausible, everyday names and places                       */

typedef struct {
        const char *name;
        const char *region;   /* "" when not used in addresses */
        const char *postcode; /* pattern: '#' digit, '@' letter */
        const char *lat;
        const char *lon;
} city_t;

enum {
        ADDR_NUM_STREET_CITY_POST, /* 12 High Street, London E1 6AN */
        ADDR_US,                   /* 12 Main Street, Chicago, IL 60601 */
        ADDR_STREET_NUM_POST_CITY, /* Hauptstraße 12, 10115 Berlin */
        ADDR_NUM_STREET_POST_CITY, /* 12 Rue de la Paix, 75002 Paris */
};

typedef struct {
        const char *alpha3, *alpha2, *name, *demonym, *tz;
        const char *const *male, *const *female, *const *last;
        const city_t *cities;
        const char *const *streets;
        int addr_style;
        const char *doc_pattern;  /* passport / ID number */
        const char *id_doc;       /* national ID card type name, or NULL */
        const char *legal_form;   /* long */
        const char *legal_suffix; /* in the company name */
        const char *registry;     /* registry name */
        const char *reg_pattern;  /* registration number */
        const char *currency;
} culture_t;

#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define CITIES(...)                                                            \
        ((const city_t[]){ __VA_ARGS__, { NULL, NULL, NULL, NULL, NULL } })

static const culture_t cultures[] = {
        { "GBR", "GB", "United Kingdom", "British", "Europe/London",
          LIST("Oliver", "Harry", "George", "Jack", "Thomas", "James", "Samuel",
               "Daniel"),
          LIST("Olivia", "Amelia", "Isla", "Emily", "Charlotte", "Sophie",
               "Grace", "Zo\xc3\xab"),
          LIST("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson",
               "Evans", "Thompson", "Walker", "Hughes"),
          CITIES({ "London", "", "E# #@@", "51.5072", "-0.1276" },
                 { "Manchester", "", "M# #@@", "53.4808", "-2.2426" },
                 { "Bristol", "", "BS# #@@", "51.4545", "-2.5879" }),
          LIST("High Street", "Station Road", "Church Lane", "Victoria Road",
               "Park Avenue"),
          ADDR_NUM_STREET_CITY_POST, "#########", NULL,
          "Private limited company", "Ltd", "Companies House (sandbox)",
          "########", "GBP" },
        { "USA", "US", "United States", "American", "America/New_York",
          LIST("Michael", "Christopher", "Matthew", "Joshua", "Andrew", "Ryan",
               "Tyler", "Brandon"),
          LIST("Jessica", "Ashley", "Jennifer", "Sarah", "Madison", "Hannah",
               "Lauren", "Megan"),
          LIST("Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Martinez",
               "Anderson", "Jackson", "White", "Harris"),
          CITIES({ "Chicago", "IL", "606##", "41.8781", "-87.6298" },
                 { "Austin", "TX", "787##", "30.2672", "-97.7431" },
                 { "Portland", "OR", "972##", "45.5152", "-122.6784" }),
          LIST("Main Street", "Oak Street", "Maple Avenue", "Cedar Lane",
               "Washington Street"),
          ADDR_US, "#########", NULL, "Corporation", "Inc.",
          "Delaware Division of Corporations (sandbox)", "#######", "USD" },
        { "ESP", "ES", "Spain", "Spanish", "Europe/Madrid",
          LIST("Jos\xc3\xa9", "Javier", "Alejandro", "Pablo", "Sergio",
               "\xc3\x81lvaro", "Diego", "Manuel"),
          LIST("Luc\xc3\xad"
               "a",
               "Mar\xc3\xad"
               "a",
               "Paula", "Laura", "Carmen", "Elena",
               "Sof\xc3\xad"
               "a",
               "Marta"),
          LIST("Garc\xc3\xad"
               "a",
               "Fern\xc3\xa1ndez", "L\xc3\xb3pez", "Mart\xc3\xadnez",
               "S\xc3\xa1nchez", "P\xc3\xa9rez", "G\xc3\xb3mez", "Ruiz",
               "Jim\xc3\xa9nez", "Moreno"),
          CITIES({ "Madrid", "", "280##", "40.4168", "-3.7038" },
                 { "Valencia", "", "460##", "39.4699", "-0.3763" },
                 { "Sevilla", "", "410##", "37.3891", "-5.9845" }),
          LIST("Calle Mayor", "Calle Real", "Avenida de la Constituci\xc3\xb3n",
               "Calle del Sol",
               "Plaza de Espa\xc3\xb1"
               "a"),
          ADDR_STREET_NUM_POST_CITY, "@@@######",
          "Documento Nacional de Identidad",
          "Sociedad de responsabilidad limitada", "S.L.",
          "Registro Mercantil (sandbox)", "B########", "EUR" },
        { "DEU", "DE", "Germany", "German", "Europe/Berlin",
          LIST("Lukas", "Jonas", "Felix", "Maximilian", "Leon", "Paul",
               "Tobias", "J\xc3\xbcrgen"),
          LIST("Anna", "Lena", "Lea", "Hannah", "Julia", "Katharina", "Sabine",
               "J\xc3\xbclia"),
          LIST("M\xc3\xbcller", "Schmidt", "Schneider", "Fischer", "Weber",
               "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann"),
          CITIES({ "Berlin", "", "10###", "52.5200", "13.4050" },
                 { "Hamburg", "", "20###", "53.5511", "9.9937" },
                 { "M\xc3\xbcnchen", "", "80###", "48.1351", "11.5820" }),
          LIST("Hauptstra\xc3\x9f"
               "e",
               "Bahnhofstra\xc3\x9f"
               "e",
               "Gartenweg",
               "Schulstra\xc3\x9f"
               "e",
               "Lindenallee"),
          ADDR_STREET_NUM_POST_CITY, "C@@######", "Personalausweis",
          "Gesellschaft mit beschr\xc3\xa4nkter Haftung", "GmbH",
          "Handelsregister (sandbox)", "HRB ######", "EUR" },
        { "FRA", "FR", "France", "French", "Europe/Paris",
          LIST("Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Nathan",
               "Fran\xc3\xa7ois", "Th\xc3\xa9o"),
          LIST("Emma", "Chlo\xc3\xa9", "Camille",
               "L\xc3\xa9"
               "a",
               "Manon", "In\xc3\xa8s", "Juliette", "Claire"),
          LIST("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard",
               "Petit", "Durand", "Lef\xc3\xa8vre", "Moreau"),
          CITIES({ "Paris", "", "750##", "48.8566", "2.3522" },
                 { "Lyon", "", "6900#", "45.7640", "4.8357" },
                 { "Nantes", "", "44###", "47.2184", "-1.5536" }),
          LIST("Rue de la R\xc3\xa9publique", "Rue Victor Hugo",
               "Avenue Jean Jaur\xc3\xa8s", "Rue de la Gare",
               "Boulevard Pasteur"),
          ADDR_NUM_STREET_POST_CITY, "##@@#####",
          "Carte nationale d'identit\xc3\xa9",
          "Soci\xc3\xa9t\xc3\xa9 par actions simplifi\xc3\xa9"
          "e",
          "SAS", "Registre du commerce et des soci\xc3\xa9t\xc3\xa9s (sandbox)",
          "### ### ###", "EUR" },
        { "ITA", "IT", "Italy", "Italian", "Europe/Rome",
          LIST("Francesco", "Alessandro", "Lorenzo", "Matteo", "Andrea",
               "Niccol\xc3\xb2", "Giuseppe", "Marco"),
          LIST("Giulia", "Chiara", "Francesca", "Sara", "Martina", "Alessia",
               "Federica", "Elena"),
          LIST("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano",
               "Colombo", "Ricci", "Marino", "Greco"),
          CITIES({ "Milano", "", "201##", "45.4642", "9.1900" },
                 { "Roma", "", "001##", "41.9028", "12.4964" },
                 { "Torino", "", "101##", "45.0703", "7.6869" }),
          LIST("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele",
               "Via Dante", "Piazza della Libert\xc3\xa0"),
          ADDR_STREET_NUM_POST_CITY, "@@#######", "Carta d'identit\xc3\xa0",
          "Societ\xc3\xa0 a responsabilit\xc3\xa0 limitata", "S.r.l.",
          "Registro delle Imprese (sandbox)", "###########", "EUR" },
        { "POL", "PL", "Poland", "Polish", "Europe/Warsaw",
          LIST("Jakub", "Kacper", "Szymon", "Filip", "\xc5\x81ukasz", "Piotr",
               "Tomasz", "Micha\xc5\x82"),
          LIST("Zuzanna", "Julia", "Maja", "Zofia", "Katarzyna", "Agnieszka",
               "Ma\xc5\x82gorzata", "Ewa"),
          LIST("Nowak", "Kowalski", "Wi\xc5\x9bniewski", "W\xc3\xb3jcik",
               "Kowalczyk", "Kami\xc5\x84ski", "Lewandowski",
               "Zieli\xc5\x84ski", "Szyma\xc5\x84ski",
               "D\xc4\x85"
               "browski"),
          CITIES({ "Warszawa", "", "00-###", "52.2297", "21.0122" },
                 { "Krak\xc3\xb3w", "", "30-###", "50.0647", "19.9450" },
                 { "Gda\xc5\x84sk", "", "80-###", "54.3520", "18.6466" }),
          LIST("ul. D\xc5\x82uga", "ul. Kwiatowa", "ul. Le\xc5\x9bna",
               "ul. Polna", "ul. Ogrodowa"),
          ADDR_STREET_NUM_POST_CITY, "@@#######",
          "Dow\xc3\xb3"
          "d osobisty",
          "Sp\xc3\xb3\xc5\x82ka z ograniczon\xc4\x85 odpowiedzialno\xc5\x9b"
          "ci\xc4\x85",
          "sp. z o.o.",
          "Krajowy Rejestr S\xc4\x85"
          "dowy (sandbox)",
          "##########", "PLN" },
        { "NLD", "NL", "Netherlands", "Dutch", "Europe/Amsterdam",
          LIST("Daan", "Sem", "Lucas", "Milan", "Levi", "Bram", "Thijs",
               "Joris"),
          LIST("Emma", "Tess", "Sophie", "Julia", "Anna", "Sanne", "Fleur",
               "Lotte"),
          LIST("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk",
               "Bakker", "Visser", "Smit", "Meijer", "de Boer"),
          CITIES({ "Amsterdam", "", "10## @@", "52.3676", "4.9041" },
                 { "Utrecht", "", "35## @@", "52.0907", "5.1214" },
                 { "Rotterdam", "", "30## @@", "51.9244", "4.4777" }),
          LIST("Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsplein",
               "Schoolstraat"),
          ADDR_STREET_NUM_POST_CITY, "@@#######", "Identiteitskaart",
          "Besloten vennootschap", "B.V.", "Kamer van Koophandel (sandbox)",
          "########", "EUR" },
        { "SWE", "SE", "Sweden", "Swedish", "Europe/Stockholm",
          LIST("Erik", "Lars", "Karl", "Anders", "Johan", "Bj\xc3\xb6rn",
               "Nils", "Oskar"),
          LIST("Anna", "Maria", "Karin", "Sara", "Emma", "\xc3\x85sa", "Ingrid",
               "Linn\xc3\xa9"
               "a"),
          LIST("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson",
               "Larsson", "Olsson", "Persson", "Lindqvist",
               "L\xc3\xb6"
               "fgren"),
          CITIES({ "Stockholm", "", "11# ##", "59.3293", "18.0686" },
                 { "G\xc3\xb6teborg", "", "41# ##", "57.7089", "11.9746" },
                 { "Malm\xc3\xb6", "", "21# ##", "55.6050", "13.0038" }),
          LIST("Storgatan", "Kyrkogatan", "Drottninggatan", "Skolgatan",
               "Sj\xc3\xb6gatan"),
          ADDR_STREET_NUM_POST_CITY, "########", "Nationellt id-kort",
          "Aktiebolag", "AB", "Bolagsverket (sandbox)", "556###-####", "SEK" },
        { "NGA", "NG", "Nigeria", "Nigerian", "Africa/Lagos",
          LIST("Chinedu", "Emeka", "Oluwaseun", "Tunde", "Ifeanyi", "Musa",
               "Babajide", "Obinna"),
          LIST("Ngozi", "Chiamaka", "Adaeze", "Funmilayo", "Amina", "Temitope",
               "Yetunde", "Nneka"),
          LIST("Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Bello",
               "Nwosu", "Adebayo", "Ibrahim", "Obi"),
          CITIES({ "Lagos", "", "10####", "6.5244", "3.3792" },
                 { "Abuja", "", "900###", "9.0765", "7.3986" },
                 { "Enugu", "", "400###", "6.4584", "7.5464" }),
          LIST("Broad Street", "Awolowo Road", "Herbert Macaulay Way",
               "Ahmadu Bello Way", "Ogui Road"),
          ADDR_NUM_STREET_CITY_POST, "@########", "National Identity Card",
          "Private company limited by shares", "Limited",
          "Corporate Affairs Commission (sandbox)", "RC ######", "NGN" },
        { "IND", "IN", "India", "Indian", "Asia/Kolkata",
          LIST("Aarav", "Vihaan", "Arjun", "Rohan", "Aditya", "Rahul", "Karan",
               "Sanjay"),
          LIST("Ananya", "Diya", "Priya", "Aditi", "Kavya", "Neha", "Pooja",
               "Meera"),
          LIST("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Iyer", "Reddy",
               "Nair", "Mehta", "Banerjee"),
          CITIES({ "Mumbai", "", "4000##", "19.0760", "72.8777" },
                 { "Bengaluru", "", "5600##", "12.9716", "77.5946" },
                 { "Pune", "", "4110##", "18.5204", "73.8567" }),
          LIST("MG Road", "Station Road", "Nehru Street", "Park Street",
               "Gandhi Nagar"),
          ADDR_NUM_STREET_CITY_POST, "@#######", NULL,
          "Private limited company", "Private Limited",
          "Registrar of Companies (sandbox)", "U72200MH20##PTC######", "INR" },
        { "JPN", "JP", "Japan", "Japanese", "Asia/Tokyo",
          LIST("Haruto", "Yuto", "Sota", "Ren", "Takumi", "Kenji", "Hiroshi",
               "Daiki"),
          LIST("Yui", "Hina", "Sakura", "Aoi", "Yuna", "Haruka", "Emi",
               "Naomi"),
          LIST("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito",
               "Yamamoto", "Nakamura", "Kobayashi", "Kato"),
          CITIES({ "Tokyo", "", "1##-####", "35.6762", "139.6503" },
                 { "Osaka", "", "5##-####", "34.6937", "135.5023" },
                 { "Fukuoka", "", "81#-####", "33.5904", "130.4017" }),
          LIST("Chuo-dori", "Sakura-dori", "Midori-cho", "Honmachi",
               "Kita-machi"),
          ADDR_NUM_STREET_CITY_POST, "@@#######", NULL, "Kabushiki kaisha",
          "K.K.", "Legal Affairs Bureau (sandbox)", "####-##-######", "JPY" },
        { "BRA", "BR", "Brazil", "Brazilian", "America/Sao_Paulo",
          LIST("Jo\xc3\xa3o", "Pedro", "Gabriel", "Lucas", "Matheus", "Rafael",
               "Gustavo", "Felipe"),
          LIST("Ana", "Beatriz", "Larissa", "Camila", "Juliana", "Fernanda",
               "Let\xc3\xad"
               "cia",
               "Mariana"),
          LIST("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira",
               "Alves", "Pereira", "Lima",
               "Gon\xc3\xa7"
               "alves"),
          CITIES(
              { "S\xc3\xa3o Paulo", "", "01###-###", "-23.5505", "-46.6333" },
              { "Rio de Janeiro", "", "20###-###", "-22.9068", "-43.1729" },
              { "Curitiba", "", "80###-###", "-25.4284", "-49.2733" }),
          LIST("Rua das Flores", "Avenida Brasil", "Rua S\xc3\xa3o Jo\xc3\xa3o",
               "Rua XV de Novembro", "Avenida Paulista"),
          ADDR_STREET_NUM_POST_CITY, "@@######", "Carteira de Identidade",
          "Sociedade limitada", "Ltda.", "Junta Comercial (sandbox)",
          "##.###.###/0001-##", "BRL" },
        { "TUR", "TR", "T\xc3\xbcrkiye", "Turkish", "Europe/Istanbul",
          LIST("Mehmet", "Mustafa", "Ahmet", "Emre", "Burak", "Can", "Murat",
               "Oktay"),
          LIST("Zeynep", "Elif",
               "Ay\xc5\x9f"
               "e",
               "Fatma", "Merve", "G\xc3\xbcl", "Esra", "Deniz"),
          LIST("Y\xc4\xb1lmaz", "Kaya", "Demir",
               "\xc5\x9e"
               "ahin",
               "\xc3\x87"
               "elik",
               "Y\xc4\xb1ld\xc4\xb1z", "Y\xc4\xb1ld\xc4\xb1r\xc4\xb1m",
               "\xc3\x96zt\xc3\xbcrk", "Aydin", "Arslan"),
          CITIES({ "\xc4\xb0stanbul", "", "34###", "41.0082", "28.9784" },
                 { "Ankara", "", "06###", "39.9334", "32.8597" },
                 { "\xc4\xb0zmir", "", "35###", "38.4237", "27.1428" }),
          LIST("Atat\xc3\xbcrk Caddesi", "Cumhuriyet Caddesi",
               "\xc4\xb0stiklal Caddesi",
               "Bah\xc3\xa7"
               "e Sokak",
               "Lale Sokak"),
          ADDR_STREET_NUM_POST_CITY, "@########", "T.C. Kimlik Kart\xc4\xb1",
          "Anonim \xc5\x9eirketi", "A.\xc5\x9e.", "Ticaret Sicili (sandbox)",
          "######", "TRY" },
};

static const char *const company_first[] = {
        "Northwind",  "Bluefield", "Silverline", "Redwood",    "Brightwater",
        "Ironbridge", "Greenleaf", "Stonegate",  "Clearview",  "Harbourside",
        "Oakridge",   "Sunpeak",   "Windmill",   "Lighthouse", "Granite",
        "Meridian",   "Evergreen", "Falcon",     "Copperleaf", "Riverbend",
        NULL
};
static const char *const company_second[] = {
        "Logistics",   "Analytics",   "Foods",   "Capital",    "Software",
        "Textiles",    "Engineering", "Trading", "Health",     "Robotics",
        "Payments",    "Studios",     "Energy",  "Outfitters", "Consulting",
        "Marketplace", NULL
};

static const struct {
        const char *code, *description;
} industries[] = {
        { "62.01", "Computer programming activities" },
        { "46.90", "Non-specialised wholesale trade" },
        { "49.41", "Freight transport by road" },
        { "64.99", "Other financial service activities" },
        { "70.22", "Business and other management consultancy activities" },
        { "47.91", "Retail sale via mail order houses or via Internet" },
        { "10.89", "Manufacture of other food products" },
        { "72.19", "Other research and experimental development" },
};

static const struct {
        const char *brand, *model, *os, *browser, *platform;
} devices[] = {
        { "Apple", "iPhone 15", "iOS", "Mobile Safari", "mobile" },
        { "Apple", "iPhone 13", "iOS", "Mobile Safari", "mobile" },
        { "Samsung", "Galaxy S24", "Android", "Chrome Mobile", "mobile" },
        { "Google", "Pixel 8", "Android", "Chrome Mobile", "mobile" },
        { "Xiaomi", "Redmi Note 13", "Android", "Chrome Mobile", "mobile" },
        { "Apple", "Mac", "Mac OS X", "Safari", "desktop" },
        { "Generic", "PC", "Windows", "Chrome", "desktop" },
        { "Generic", "PC", "Linux", "Firefox", "desktop" },
};

/* RFC 5737 documentation prefixes */
static const char *const ip_prefixes[] = { "192.0.2.", "198.51.100.",
                                           "203.0.113.", NULL };
static const char *const nanp_areas[] = { "202", "212", "312", "415", "512",
                                          "617", "303", "206", NULL };
static const char *const email_domains[] = { "example.com", "example.org",
                                             "example.net", NULL };

/* Transliteration of the non-ASCII letters used above, for e-mail addresses. */
static const struct {
        const char *utf8, *ascii;
} fold[] = {
        { "\xc3\xa0", "a" }, { "\xc3\xa1", "a" }, { "\xc3\xa2", "a" },
        { "\xc3\xa3", "a" }, { "\xc3\xa4", "a" }, { "\xc3\xa5", "a" },
        { "\xc3\x85", "a" }, { "\xc3\x81", "a" }, { "\xc3\xa7", "c" },
        { "\xc3\x87", "c" }, { "\xc3\xa8", "e" }, { "\xc3\xa9", "e" },
        { "\xc3\xab", "e" }, { "\xc3\xad", "i" }, { "\xc3\xb2", "o" },
        { "\xc3\xb3", "o" }, { "\xc3\xb6", "o" }, { "\xc3\x96", "o" },
        { "\xc3\xba", "u" }, { "\xc3\xbc", "u" }, { "\xc3\x9f", "ss" },
        { "\xc3\xb1", "n" }, { "\xc4\x85", "a" }, { "\xc4\xb1", "i" },
        { "\xc4\xb0", "i" }, { "\xc5\x82", "l" }, { "\xc5\x81", "l" },
        { "\xc5\x84", "n" }, { "\xc5\x9b", "s" }, { "\xc5\x9f", "s" },
        { "\xc5\x9e", "s" },
};

/* ------------------------------------------------------------------------ */
/* Generator state and JSON helpers                                          */

typedef struct {
        kb_rng_t *rng;
        int oom;
} gen_t;

static size_t list_len(const char *const *l)
{
        size_t n = 0;

        while (l[n])
                n++;
        return n;
}

static const char *pick(gen_t *g, const char *const *l)
{
        return l[kb_rng_range(g->rng, list_len(l))];
}

/* Uniform integer in [lo, hi]. */
static int rnd(gen_t *g, int lo, int hi)
{
        return lo + (int)kb_rng_range(g->rng, (uint64_t)(hi - lo + 1));
}

static void pattern(gen_t *g, const char *pat, char *out, size_t size)
{
        size_t i = 0;

        for (; *pat && i + 1 < size; pat++) {
                if (*pat == '#')
                        out[i++] = (char)('0' + rnd(g, 0, 9));
                else if (*pat == '@')
                        out[i++] = (char)('A' + rnd(g, 0, 25));
                else
                        out[i++] = *pat;
        }
        out[i] = '\0';
}

static json_object *new_obj(gen_t *g)
{
        json_object *o = json_object_new_object();

        if (!o)
                g->oom = 1;
        return o;
}

static json_object *new_arr(gen_t *g)
{
        json_object *a = json_object_new_array();

        if (!a)
                g->oom = 1;
        return a;
}

/* Adds @p v (owned) to @p o; a NULL @p v is taken as allocation failure. */
static void put(gen_t *g, json_object *o, const char *k, json_object *v)
{
        if (!o || !v || json_object_object_add(o, k, v) != 0) {
                g->oom = 1;
                json_object_put(v);
        }
}

static void push(gen_t *g, json_object *a, json_object *v)
{
        if (!a || !v || json_object_array_add(a, v) != 0) {
                g->oom = 1;
                json_object_put(v);
        }
}

static void put_str(gen_t *g, json_object *o, const char *k, const char *s)
{
        put(g, o, k, json_object_new_string(s));
}

static void put_int(gen_t *g, json_object *o, const char *k, int64_t v)
{
        put(g, o, k, json_object_new_int64(v));
}

static void put_bool(gen_t *g, json_object *o, const char *k, int v)
{
        put(g, o, k, json_object_new_boolean(v));
}

static void put_null(gen_t *g, json_object *o, const char *k)
{
        if (!o || json_object_object_add(o, k, NULL) != 0)
                g->oom = 1;
}

/* A decimal number given in hundredths, serialised in its shortest form
 * (87.5, not 87.50 or 87.5000000001) so that json-c output, Python and the
 * canonical form agree. */
static json_object *num_h(int64_t hundredths)
{
        char s[KB_CANON_REPR_BYTES];
        double d = (double)hundredths / 100.0;

        if (kb_canon_double_repr(d, s, sizeof(s)) != KB_OK)
                return NULL;
        return json_object_new_double_s(d, s);
}

static void put_num(gen_t *g, json_object *o, const char *k, int64_t h)
{
        put(g, o, k, num_h(h));
}

/* A coordinate from the tables ("52.5200") as a double in shortest form. */
static void put_num_str(gen_t *g, json_object *o, const char *k, const char *s)
{
        char r[KB_CANON_REPR_BYTES];
        double d = 0;

        if (sscanf(s, "%lf", &d) != 1 ||
            kb_canon_double_repr(d, r, sizeof(r)) != KB_OK) {
                g->oom = 1;
                return;
        }
        put(g, o, k, json_object_new_double_s(d, r));
}

static void put_uuid(gen_t *g, json_object *o, const char *k)
{
        char u[37];

        kb_rng_uuid4(g->rng, u);
        put_str(g, o, k, u);
}

static void media_url(gen_t *g, const char *ext, char *out, size_t size)
{
        char u[37];

        kb_rng_uuid4(g->rng, u);
        snprintf(out, size, "https://sandbox.invalid/media/%s.%s", u, ext);
}

static void put_media(gen_t *g, json_object *o, const char *k, const char *ext)
{
        char url[96];

        media_url(g, ext, url, sizeof(url));
        put_str(g, o, k, url);
}

static void date_str(int y, int m, int d, char out[16])
{
        snprintf(out, 16, "%04u-%02u-%02u", (unsigned)y % 10000u,
                 (unsigned)m % 100u, (unsigned)d % 100u);
}

static void put_date(gen_t *g, json_object *o, const char *k, int y, int m,
                     int d)
{
        char s[16];

        date_str(y, m, d, s);
        put_str(g, o, k, s);
}

/* A moment in the first ten months of the reference year. */
static void put_time(gen_t *g, json_object *o, const char *k)
{
        char s[32];
        unsigned mo = (unsigned)rnd(g, 1, 10), d = (unsigned)rnd(g, 1, 28);
        unsigned h = (unsigned)rnd(g, 7, 21), mi = (unsigned)rnd(g, 0, 59);
        unsigned se = (unsigned)rnd(g, 0, 59);

        snprintf(s, sizeof(s), "%04u-%02u-%02uT%02u:%02u:%02uZ",
                 (unsigned)KB_SBX_REF_YEAR % 10000u, mo % 100u, d % 100u,
                 h % 100u, mi % 100u, se % 100u);
        put_str(g, o, k, s);
}

/* A warnings array with one warning, or an empty one when @p risk is NULL. */
static json_object *warnings(gen_t *g, const char *risk, const char *log_type,
                             const char *short_desc, const char *long_desc)
{
        json_object *a = new_arr(g), *w;

        if (!risk)
                return a;
        w = new_obj(g);
        put_str(g, w, "risk", risk);
        put_str(g, w, "log_type", log_type);
        put_str(g, w, "short_description", short_desc);
        put_str(g, w, "long_description", long_desc);
        put_null(g, w, "additional_data");
        push(g, a, w);
        return a;
}

/* Wraps one element into a one-element array stored as @p key. */
static void put_one(gen_t *g, json_object *o, const char *key, json_object *el)
{
        json_object *a = new_arr(g);

        push(g, a, el);
        put(g, o, key, a);
}

/* ------------------------------------------------------------------------ */
/* People                                                                    */

typedef struct {
        const culture_t *c;
        const city_t *city;
        char first[64], last[64], full[160];
        char gender[2];
        int dob_y, dob_m, dob_d;
        char street[160], postcode[24], address[320];
        char email[160], phone[24];
} person_t;

static size_t city_count(const city_t *c)
{
        size_t n = 0;

        while (c[n].name)
                n++;
        return n;
}

static const culture_t *pick_culture(gen_t *g)
{
        return &cultures[kb_rng_range(g->rng, KB_ARRAY_SIZE(cultures))];
}

static void make_address(gen_t *g, const culture_t *c, const city_t *city,
                         char *street, size_t ssize, char *postcode,
                         size_t psize, char *address, size_t asize)
{
        const char *st = pick(g, c->streets);
        int num = rnd(g, 1, 180);

        pattern(g, city->postcode, postcode, psize);
        switch (c->addr_style) {
        case ADDR_US:
                snprintf(street, ssize, "%d %s", num, st);
                snprintf(address, asize, "%s, %s, %s %s, %s", street,
                         city->name, city->region, postcode, c->name);
                break;
        case ADDR_STREET_NUM_POST_CITY:
                snprintf(street, ssize, "%s %d", st, num);
                snprintf(address, asize, "%s, %s %s, %s", street, postcode,
                         city->name, c->name);
                break;
        case ADDR_NUM_STREET_POST_CITY:
                snprintf(street, ssize, "%d %s", num, st);
                snprintf(address, asize, "%s, %s %s, %s", street, postcode,
                         city->name, c->name);
                break;
        default:
                snprintf(street, ssize, "%d %s", num, st);
                snprintf(address, asize, "%s, %s %s, %s", street, city->name,
                         postcode, c->name);
                break;
        }
}

/* Lowercase ASCII for an e-mail local part: letters folded, others dropped. */
static void ascii_fold(const char *in, char *out, size_t size)
{
        size_t o = 0, i, k;

        for (i = 0; in[i] && o + 3 < size;) {
                unsigned char ch = (unsigned char)in[i];
                if (ch < 0x80) {
                        if ((ch >= 'a' && ch <= 'z') ||
                            (ch >= '0' && ch <= '9'))
                                out[o++] = (char)ch;
                        else if (ch >= 'A' && ch <= 'Z')
                                out[o++] = (char)(ch + 32);
                        i++;
                        continue;
                }
                for (k = 0; k < KB_ARRAY_SIZE(fold); k++) {
                        size_t l = strlen(fold[k].utf8);
                        if (strncmp(in + i, fold[k].utf8, l) == 0) {
                                size_t al = strlen(fold[k].ascii);
                                memcpy(out + o, fold[k].ascii, al);
                                o += al;
                                i += l;
                                break;
                        }
                }
                if (k == KB_ARRAY_SIZE(fold)) {
                        /* unknown letter: skip the whole UTF-8 sequence */
                        i++;
                        while ((in[i] & 0xc0) == 0x80)
                                i++;
                }
        }
        out[o] = '\0';
}

static void make_person(gen_t *g, const culture_t *c, person_t *p)
{
        char f[64], l[64];
        const char *fn;

        memset(p, 0, sizeof(*p));
        p->c = c ? c : pick_culture(g);
        p->gender[0] = rnd(g, 0, 1) ? 'F' : 'M';
        fn = pick(g, p->gender[0] == 'F' ? p->c->female : p->c->male);
        kb_strlcpy(p->first, fn, sizeof(p->first));
        kb_strlcpy(p->last, pick(g, p->c->last), sizeof(p->last));
        snprintf(p->full, sizeof(p->full), "%s %s", p->first, p->last);
        p->dob_y = KB_SBX_REF_YEAR - rnd(g, 19, 80);
        p->dob_m = rnd(g, 1, 12);
        p->dob_d = rnd(g, 1, 28);
        p->city = &p->c->cities[kb_rng_range(g->rng, city_count(p->c->cities))];
        make_address(g, p->c, p->city, p->street, sizeof(p->street),
                     p->postcode, sizeof(p->postcode), p->address,
                     sizeof(p->address));
        ascii_fold(p->first, f, sizeof(f));
        ascii_fold(p->last, l, sizeof(l));
        snprintf(p->email, sizeof(p->email), "%s.%s%02d@%s", f, l,
                 rnd(g, 0, 99), pick(g, email_domains));
        if (strcmp(p->c->alpha3, "GBR") == 0)
                snprintf(p->phone, sizeof(p->phone), "+447700900%03d",
                         rnd(g, 0, 999));
        else
                snprintf(p->phone, sizeof(p->phone), "+1%s55501%02d",
                         pick(g, nanp_areas), rnd(g, 0, 99));
}

static int age_of(const person_t *p)
{
        /* on 1 July of the reference year */
        return KB_SBX_REF_YEAR - p->dob_y - (p->dob_m > 6 ? 1 : 0);
}

/* ------------------------------------------------------------------------ */
/* KYC                                                                       */

enum { KYC_ST_APPROVED, KYC_ST_DECLINED, KYC_ST_REVIEW };
static const char *const kyc_st[] = { "Approved", "Declined", "In Review" };
static const char *const kyb_st[] = { "APPROVED", "DECLINED", "IN_REVIEW" };

/* Which single check carries the decision. */
enum {
        WHY_NONE,
        WHY_DOC_EXPIRED,  /* declined */
        WHY_LIVENESS,     /* declined */
        WHY_FACE_DECLINE, /* declined */
        WHY_SANCTIONS,    /* declined */
        WHY_FACE_REVIEW,  /* in review */
        WHY_PEP,          /* in review */
        WHY_VPN,          /* in review */
        WHY_POA_NAME,     /* in review */
};

typedef struct {
        char portrait[96], selfie[96];
} kyc_media_t;

static json_object *kyc_id_verification(gen_t *g, const person_t *p, int why,
                                        kyc_media_t *m)
{
        json_object *o = new_obj(g), *pa;
        char docno[32];
        int passport = !p->c->id_doc || rnd(g, 0, 1);
        int exp_y, iss_y, iss_m = rnd(g, 1, 12), iss_d = rnd(g, 1, 28);
        int declined = why == WHY_DOC_EXPIRED;

        pattern(g, p->c->doc_pattern, docno, sizeof(docno));
        if (declined)
                exp_y = KB_SBX_REF_YEAR - rnd(g, 1, 3);
        else
                exp_y = KB_SBX_REF_YEAR + rnd(g, 1, 9);
        iss_y = exp_y - 10;
        put_uuid(g, o, "id");
        put_str(g, o, "status",
                kyc_st[declined ? KYC_ST_DECLINED : KYC_ST_APPROVED]);
        put_str(g, o, "document_type", passport ? "Passport" : "Identity Card");
        put_str(g, o, "document_subtype", passport ? "Passport" : p->c->id_doc);
        put_str(g, o, "document_number", docno);
        put_str(g, o, "issuing_state", p->c->alpha3);
        put_str(g, o, "issuing_state_name", p->c->name);
        put_str(g, o, "first_name", p->first);
        put_str(g, o, "last_name", p->last);
        put_str(g, o, "full_name", p->full);
        put_date(g, o, "date_of_birth", p->dob_y, p->dob_m, p->dob_d);
        put_int(g, o, "age", age_of(p));
        put_date(g, o, "date_of_issue", iss_y, iss_m, iss_d);
        put_date(g, o, "expiration_date", exp_y, iss_m, iss_d);
        put_str(g, o, "nationality", p->c->alpha3);
        put_str(g, o, "gender", p->gender);
        put_str(g, o, "place_of_birth", p->city->name);
        put_str(g, o, "address", p->address);
        pa = new_obj(g);
        put_str(g, pa, "street", p->street);
        put_str(g, pa, "city", p->city->name);
        put_str(g, pa, "postal_code", p->postcode);
        put_str(g, pa, "country", p->c->alpha3);
        put(g, o, "parsed_address", pa);
        media_url(g, "jpg", m->portrait, sizeof(m->portrait));
        put_str(g, o, "portrait_image", m->portrait);
        put_media(g, o, "front_image", "jpg");
        if (passport)
                put_null(g, o, "back_image");
        else
                put_media(g, o, "back_image", "jpg");
        put_bool(g, o, "mrz_verified", 1);
        put(g, o, "warnings",
            declined
                ? warnings(g, "DOCUMENT_EXPIRED", "error", "Document expired",
                           "The document's expiration date is in the "
                           "past.")
                : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyc_liveness(gen_t *g, int why, kyc_media_t *m,
                                 const person_t *p)
{
        static const char *const methods[] = { "passive", "active_3d",
                                               "flashing", NULL };
        json_object *o = new_obj(g);
        int declined = why == WHY_LIVENESS;
        int score = declined ? rnd(g, 800, 4500) : rnd(g, 8600, 9990);

        put_uuid(g, o, "id");
        put_str(g, o, "status",
                kyc_st[declined ? KYC_ST_DECLINED : KYC_ST_APPROVED]);
        put_str(g, o, "method", pick(g, methods));
        put_num(g, o, "score", score);
        media_url(g, "jpg", m->selfie, sizeof(m->selfie));
        put_str(g, o, "reference_image", m->selfie);
        put_media(g, o, "video_url", "mp4");
        put_num(g, o, "age_estimation", age_of(p) * 100 + rnd(g, -350, 350));
        put(g, o, "warnings",
            declined ? warnings(g, "LOW_LIVENESS_SCORE", "error",
                                "Liveness check failed",
                                "The liveness score is below the decline "
                                "threshold (50); possible presentation "
                                "attack.")
                     : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyc_face_match(gen_t *g, int why, const kyc_media_t *m)
{
        json_object *o = new_obj(g);
        int st = KYC_ST_APPROVED, score = rnd(g, 8500, 9950);

        if (why == WHY_FACE_DECLINE) {
                st = KYC_ST_DECLINED;
                score = rnd(g, 500, 4000);
        } else if (why == WHY_FACE_REVIEW) {
                /* between the documented decline (50) and review (70) */
                st = KYC_ST_REVIEW;
                score = rnd(g, 5500, 6900);
        }
        put_uuid(g, o, "id");
        put_str(g, o, "status", kyc_st[st]);
        put_num(g, o, "score", score);
        put_str(g, o, "source_image", m->portrait);
        put_str(g, o, "target_image", m->selfie);
        if (st == KYC_ST_DECLINED)
                put(g, o, "warnings",
                    warnings(g, "LOW_FACE_MATCH_SIMILARITY", "error",
                             "Face mismatch",
                             "The selfie does not match the document "
                             "portrait."));
        else if (st == KYC_ST_REVIEW)
                put(g, o, "warnings",
                    warnings(g, "LOW_FACE_MATCH_SIMILARITY", "warning",
                             "Low face match similarity",
                             "The similarity is below the review threshold "
                             "(70); a reviewer should compare the images."));
        else
                put(g, o, "warnings", warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static const char *const aml_datasets[] = { "Sanctions", "PEP", "Adverse Media",
                                            "Watchlists", NULL };

static json_object *datasets_array(gen_t *g, const char *one)
{
        json_object *a = new_arr(g);
        size_t i;

        if (one) {
                push(g, a, json_object_new_string(one));
                return a;
        }
        for (i = 0; aml_datasets[i]; i++)
                push(g, a, json_object_new_string(aml_datasets[i]));
        return a;
}

/* One AML hit on @p name. */
static json_object *aml_hit(gen_t *g, const char *name, const char *dataset,
                            const char *list, int score_h, const char *country,
                            const char *position)
{
        json_object *h = new_obj(g);
        char url[96];
        char u[37];

        kb_rng_uuid4(g->rng, u);
        snprintf(url, sizeof(url), "https://sandbox.invalid/aml/%s", u);
        put_str(g, h, "id", u);
        put_str(g, h, "name", name);
        put_num(g, h, "match_score", score_h);
        put(g, h, "datasets", datasets_array(g, dataset));
        put_str(g, h, "list_name", list);
        put_str(g, h, "country", country);
        if (position)
                put_str(g, h, "position", position);
        else
                put_null(g, h, "position");
        put_date(g, h, "first_seen", KB_SBX_REF_YEAR - rnd(g, 1, 8),
                 rnd(g, 1, 12), rnd(g, 1, 28));
        put_str(g, h, "url", url);
        return h;
}

static json_object *kyc_aml(gen_t *g, const person_t *p, int why)
{
        json_object *o = new_obj(g), *hits = new_arr(g);
        int st = KYC_ST_APPROVED, n = 0, top = 0;

        if (why == WHY_SANCTIONS) {
                st = KYC_ST_DECLINED;
                top = rnd(g, 9200, 10000);
                push(g, hits,
                     aml_hit(g, p->full, "Sanctions",
                             "Sandbox Consolidated Sanctions List (fictional)",
                             top, p->c->alpha3, NULL));
                n = 1;
        } else if (why == WHY_PEP) {
                char variant[200];
                st = KYC_ST_REVIEW;
                top = rnd(g, 6000, 7900);
                /* the whole first character: names are UTF-8 */
                snprintf(variant, sizeof(variant), "%.*s. %s",
                         utf8_char_len(p->first), p->first, p->last);
                push(g, hits,
                     aml_hit(g, variant, "PEP",
                             "Sandbox PEP Register (fictional)", top,
                             p->c->alpha3,
                             "Member of a regional assembly (fictional)"));
                n = 1;
        }
        put_uuid(g, o, "id");
        put_str(g, o, "status", kyc_st[st]);
        put_str(g, o, "entity_type", "person");
        put_str(g, o, "screened_name", p->full);
        put_date(g, o, "screened_date_of_birth", p->dob_y, p->dob_m, p->dob_d);
        put_str(g, o, "screened_nationality", p->c->alpha3);
        put_int(g, o, "total_hits", n);
        put_num(g, o, "score", top);
        put(g, o, "datasets_searched", datasets_array(g, NULL));
        put(g, o, "hits", hits);
        put_bool(g, o, "ongoing_monitoring", 1);
        if (st == KYC_ST_DECLINED)
                put(g, o, "warnings",
                    warnings(g, "POSSIBLE_MATCH_FOUND", "error",
                             "Sanctions match",
                             "The person matches an entry on a sanctions "
                             "list above the decline threshold (80)."));
        else if (st == KYC_ST_REVIEW)
                put(g, o, "warnings",
                    warnings(g, "POSSIBLE_MATCH_FOUND", "warning",
                             "Possible PEP match",
                             "A politically exposed person with a similar "
                             "name was found; confirm or dismiss the hit."));
        else
                put(g, o, "warnings", warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyc_database(gen_t *g, const person_t *p)
{
        static const char *const fields[] = { "full_name", "date_of_birth",
                                              "document_number", "address",
                                              NULL };
        json_object *o = new_obj(g), *arr = new_arr(g);
        char src[160];
        size_t i;

        snprintf(src, sizeof(src), "Sandbox civil registry (%s)", p->c->name);
        put_uuid(g, o, "id");
        put_str(g, o, "status", kyc_st[KYC_ST_APPROVED]);
        put_str(g, o, "source", src);
        put_str(g, o, "validation_type", rnd(g, 0, 1) ? "1x1" : "2x2");
        put_str(g, o, "match_type", "full_match");
        for (i = 0; fields[i]; i++) {
                json_object *f = new_obj(g);
                put_str(g, f, "field", fields[i]);
                put_str(g, f, "result", "match");
                push(g, arr, f);
        }
        put(g, o, "validations", arr);
        put(g, o, "warnings", warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyc_poa(gen_t *g, const person_t *p, int why)
{
        static const char *const types[] = { "utility_bill", "bank_statement",
                                             "tax_letter", NULL };
        static const char *const issuers[] = {
                "Example Energy (sandbox)", "Example Bank (sandbox)",
                "Example Water Services (sandbox)", NULL
        };
        json_object *o = new_obj(g);
        int review = why == WHY_POA_NAME;
        char other[160];

        put_uuid(g, o, "id");
        put_str(g, o, "status",
                kyc_st[review ? KYC_ST_REVIEW : KYC_ST_APPROVED]);
        put_str(g, o, "document_type", pick(g, types));
        put_str(g, o, "issuer", pick(g, issuers));
        put_date(g, o, "issue_date", KB_SBX_REF_YEAR, rnd(g, 1, 9),
                 rnd(g, 1, 28));
        if (review) {
                /* a household member's bill: same surname, other person */
                snprintf(
                    other, sizeof(other), "%s %s",
                    pick(g, p->gender[0] == 'F' ? p->c->male : p->c->female),
                    p->last);
                put_str(g, o, "name_on_document", other);
        } else {
                put_str(g, o, "name_on_document", p->full);
        }
        put_str(g, o, "address", p->address);
        put_str(g, o, "country", p->c->alpha3);
        put_media(g, o, "document_file", "pdf");
        put(g, o, "warnings",
            review ? warnings(g, "NAME_MISMATCH", "warning", "Name mismatch",
                              "The name on the proof of address differs "
                              "from the identity document.")
                   : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyc_location(gen_t *g, const person_t *p, int why)
{
        json_object *o = new_obj(g);
        int vpn = why == WHY_VPN;
        size_t nc = KB_ARRAY_SIZE(cultures), own = (size_t)(p->c - cultures);
        /* through a VPN the address resolves to another country */
        const culture_t *c =
            vpn ? &cultures[(own + 1 + kb_rng_range(g->rng, nc - 1)) % nc]
                : p->c;
        const city_t *city = vpn ? &c->cities[0] : p->city;
        size_t d = kb_rng_range(g->rng, KB_ARRAY_SIZE(devices));
        char ip[32];

        snprintf(ip, sizeof(ip), "%s%d", pick(g, ip_prefixes), rnd(g, 1, 254));
        put_uuid(g, o, "id");
        put_str(g, o, "status", kyc_st[vpn ? KYC_ST_REVIEW : KYC_ST_APPROVED]);
        put_str(g, o, "ip_address", ip);
        put_str(g, o, "ip_country", c->alpha3);
        put_str(g, o, "ip_country_name", c->name);
        put_str(g, o, "ip_city", city->name);
        put_num_str(g, o, "latitude", city->lat);
        put_num_str(g, o, "longitude", city->lon);
        put_str(g, o, "time_zone", c->tz);
        put_str(g, o, "isp",
                vpn ? "Example VPN Hosting (sandbox)"
                    : "Example Telecom (sandbox)");
        put_bool(g, o, "is_vpn_or_tor", vpn);
        put_bool(g, o, "is_data_center", vpn);
        put_str(g, o, "device_brand", devices[d].brand);
        put_str(g, o, "device_model", devices[d].model);
        put_str(g, o, "os_family", devices[d].os);
        put_str(g, o, "browser_family", devices[d].browser);
        put_str(g, o, "platform", devices[d].platform);
        put(g, o, "warnings",
            vpn ? warnings(g, "VPN_OR_TOR_DETECTED", "warning", "VPN detected",
                           "The session came through a VPN or anonymising "
                           "proxy.")
                : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyc_phone(gen_t *g, const person_t *p)
{
        json_object *o = new_obj(g);
        int uk = strncmp(p->phone, "+44", 3) == 0;

        put_uuid(g, o, "id");
        put_str(g, o, "status", kyc_st[KYC_ST_APPROVED]);
        put_str(g, o, "phone_number", p->phone);
        put_str(g, o, "country_code", uk ? "GB" : "US");
        put_str(g, o, "carrier", "Example Mobile (sandbox)");
        put_str(g, o, "line_type", "mobile");
        put_bool(g, o, "is_disposable", 0);
        put_bool(g, o, "is_voip", 0);
        put_str(g, o, "verification_method", "sms");
        put_time(g, o, "verified_at");
        return o;
}

static json_object *kyc_email(gen_t *g, const person_t *p)
{
        json_object *o = new_obj(g);

        put_uuid(g, o, "id");
        put_str(g, o, "status", kyc_st[KYC_ST_APPROVED]);
        put_str(g, o, "email", p->email);
        put_str(g, o, "domain", strchr(p->email, '@') + 1);
        put_bool(g, o, "is_disposable", 0);
        put_bool(g, o, "is_breached", 0);
        put_str(g, o, "verification_method", "otp");
        put_time(g, o, "verified_at");
        return o;
}

static int why_for(gen_t *g, int outcome)
{
        if (outcome == KYC_ST_DECLINED)
                return WHY_DOC_EXPIRED + rnd(g, 0, 3);
        if (outcome == KYC_ST_REVIEW)
                return WHY_FACE_REVIEW + rnd(g, 0, 3);
        return WHY_NONE;
}

/* Adds the nine KYC arrays for @p p to @p o; @p why from why_for(). */
static void kyc_fill(gen_t *g, json_object *o, const person_t *p, int why)
{
        kyc_media_t m;

        memset(&m, 0, sizeof(m));
        put_one(g, o, "id_verifications", kyc_id_verification(g, p, why, &m));
        put_one(g, o, "liveness_checks", kyc_liveness(g, why, &m, p));
        put_one(g, o, "face_matches", kyc_face_match(g, why, &m));
        put_one(g, o, "aml_screenings", kyc_aml(g, p, why));
        put_one(g, o, "database_validations", kyc_database(g, p));
        put_one(g, o, "proof_of_address", kyc_poa(g, p, why));
        put_one(g, o, "location_checks", kyc_location(g, p, why));
        put_one(g, o, "phone_verifications", kyc_phone(g, p));
        put_one(g, o, "email_verifications", kyc_email(g, p));
}

/* ------------------------------------------------------------------------ */
/* KYB                                                                       */

enum {
        KWHY_NONE,
        KWHY_DISSOLVED,         /* declined */
        KWHY_PERSON_DECLINED,   /* declined */
        KWHY_COMPANY_SANCTIONS, /* declined */
        KWHY_PERSON_REVIEW,     /* in review */
        KWHY_ADVERSE_MEDIA,     /* in review */
        KWHY_STALE_DOCUMENT,    /* in review */
        KWHY_QUESTIONNAIRE,     /* in review */
};

typedef struct {
        const culture_t *c;
        const city_t *city;
        char name[192], regno[40], street[160], postcode[24], address[320];
        char website[160];
        int inc_y, inc_m, inc_d;
        size_t industry;
} company_t;

static void make_company(gen_t *g, company_t *co)
{
        char slug[128];

        memset(co, 0, sizeof(*co));
        co->c = pick_culture(g);
        snprintf(co->name, sizeof(co->name), "%s %s %s", pick(g, company_first),
                 pick(g, company_second), co->c->legal_suffix);
        pattern(g, co->c->reg_pattern, co->regno, sizeof(co->regno));
        co->city =
            &co->c->cities[kb_rng_range(g->rng, city_count(co->c->cities))];
        make_address(g, co->c, co->city, co->street, sizeof(co->street),
                     co->postcode, sizeof(co->postcode), co->address,
                     sizeof(co->address));
        co->inc_y = KB_SBX_REF_YEAR - rnd(g, 1, 30);
        co->inc_m = rnd(g, 1, 12);
        co->inc_d = rnd(g, 1, 28);
        co->industry = kb_rng_range(g->rng, KB_ARRAY_SIZE(industries));
        ascii_fold(co->name, slug, sizeof(slug));
        snprintf(co->website, sizeof(co->website), "https://%s.example.com",
                 slug);
}

static json_object *kyb_registry(gen_t *g, const company_t *co, int kwhy)
{
        json_object *o = new_obj(g), *ind = new_arr(g), *i1 = new_obj(g),
                    *cap = new_obj(g);
        int dissolved = kwhy == KWHY_DISSOLVED;
        char url[96], u[37];

        kb_rng_uuid4(g->rng, u);
        snprintf(url, sizeof(url), "https://sandbox.invalid/registry/%s", u);
        put_uuid(g, o, "id");
        put_str(g, o, "status",
                kyb_st[dissolved ? KYC_ST_DECLINED : KYC_ST_APPROVED]);
        put_str(g, o, "company_name", co->name);
        put_str(g, o, "registration_number", co->regno);
        put_str(g, o, "jurisdiction", co->c->alpha3);
        put_str(g, o, "jurisdiction_name", co->c->name);
        put_str(g, o, "registry_name", co->c->registry);
        put_str(g, o, "legal_form", co->c->legal_form);
        put_date(g, o, "incorporation_date", co->inc_y, co->inc_m, co->inc_d);
        put_str(g, o, "company_status", dissolved ? "dissolved" : "active");
        if (dissolved)
                put_date(g, o, "dissolution_date", KB_SBX_REF_YEAR - 1,
                         rnd(g, 1, 12), rnd(g, 1, 28));
        put_str(g, o, "registered_address", co->address);
        put_str(g, i1, "scheme", "NACE Rev. 2");
        put_str(g, i1, "code", industries[co->industry].code);
        put_str(g, i1, "description", industries[co->industry].description);
        push(g, ind, i1);
        put(g, o, "industry_codes", ind);
        put_int(g, cap, "amount", (int64_t)rnd(g, 1, 500) * 1000);
        put_str(g, cap, "currency", co->c->currency);
        put(g, o, "share_capital", cap);
        put_str(g, o, "source_url", url);
        put_time(g, o, "retrieved_at");
        put(g, o, "warnings",
            dissolved ? warnings(g, "COMPANY_NOT_ACTIVE", "error",
                                 "Company dissolved",
                                 "The registry lists the company as "
                                 "dissolved.")
                      : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static json_object *kyb_person(gen_t *g, const company_t *co, int is_ubo,
                               int64_t pct_h, int pwhy)
{
        static const char *const titles[] = { "Director",
                                              "Managing Director",
                                              "Chief Executive Officer",
                                              "Chief Financial Officer",
                                              "Company Secretary",
                                              NULL };
        json_object *o = new_obj(g), *kyc = new_obj(g);
        person_t p;
        int st = KYC_ST_APPROVED;

        /* mostly local people, some from abroad */
        make_person(g, rnd(g, 0, 3) ? co->c : NULL, &p);
        if (pwhy >= WHY_DOC_EXPIRED && pwhy <= WHY_SANCTIONS)
                st = KYC_ST_DECLINED;
        else if (pwhy >= WHY_FACE_REVIEW)
                st = KYC_ST_REVIEW;
        put_uuid(g, o, "id");
        put_str(g, o, "status", kyb_st[st]);
        put_str(g, o, "role", is_ubo ? "ubo" : "officer");
        if (is_ubo) {
                put_num(g, o, "ownership_percentage", pct_h);
                put_str(g, o, "ownership_type",
                        rnd(g, 0, 3) ? "direct" : "indirect");
        } else {
                put_str(g, o, "position", pick(g, titles));
                put_date(g, o, "appointed_on",
                         co->inc_y + rnd(g, 0, KB_SBX_REF_YEAR - co->inc_y),
                         rnd(g, 1, 12), rnd(g, 1, 28));
        }
        put_str(g, o, "first_name", p.first);
        put_str(g, o, "last_name", p.last);
        put_str(g, o, "full_name", p.full);
        put_date(g, o, "date_of_birth", p.dob_y, p.dob_m, p.dob_d);
        put_str(g, o, "nationality", p.c->alpha3);
        put_uuid(g, kyc, "session_id");
        put_str(g, kyc, "status", kyc_st[st]);
        kyc_fill(g, kyc, &p, pwhy);
        put(g, o, "kyc", kyc);
        return o;
}

/* Ownership in hundredths of a percent, in steps of 0.5 %: every UBO holds
 * at least 25 % and together at most 100 %. */
static int64_t ubo_share(gen_t *g, int ubos)
{
        int steps = ubos == 1 ? 150 : ubos == 2 ? 50 : 16;

        return 2500 + 50 * (int64_t)rnd(g, 0, steps);
}

static json_object *kyb_people(gen_t *g, const company_t *co, int kwhy)
{
        json_object *a = new_arr(g);
        int n = rnd(g, 2, 4), ubos = rnd(g, 1, n - 1 < 3 ? n - 1 : 3);
        int i, special = rnd(g, 0, n - 1);

        for (i = 0; i < n; i++) {
                int is_ubo = i < ubos, pwhy = WHY_NONE;
                int64_t pct = is_ubo ? ubo_share(g, ubos) : 0;

                if (i == special && kwhy == KWHY_PERSON_DECLINED)
                        pwhy = WHY_SANCTIONS;
                else if (i == special && kwhy == KWHY_PERSON_REVIEW)
                        pwhy = why_for(g, KYC_ST_REVIEW);
                push(g, a, kyb_person(g, co, is_ubo, pct, pwhy));
        }
        return a;
}

static json_object *kyb_documents(gen_t *g, const company_t *co, int kwhy)
{
        static const char *const types[] = { "certificate_of_incorporation",
                                             "shareholder_register",
                                             "articles_of_association" };
        json_object *a = new_arr(g);
        int n = rnd(g, 2, 3), i;

        for (i = 0; i < n; i++) {
                json_object *o = new_obj(g), *ex = new_obj(g);
                int stale = kwhy == KWHY_STALE_DOCUMENT && i == 1;
                int y = i == 0 ? co->inc_y
                               : (stale ? KB_SBX_REF_YEAR - rnd(g, 2, 4)
                                        : KB_SBX_REF_YEAR);

                put_uuid(g, o, "id");
                put_str(g, o, "status",
                        kyb_st[stale ? KYC_ST_REVIEW : KYC_ST_APPROVED]);
                put_str(g, o, "document_type", types[i]);
                put_media(g, o, "file_url", "pdf");
                put_date(g, o, "issue_date", y,
                         i == 0 ? co->inc_m : rnd(g, 1, 9),
                         i == 0 ? co->inc_d : rnd(g, 1, 28));
                put_str(g, ex, "company_name", co->name);
                put_str(g, ex, "registration_number", co->regno);
                put(g, o, "extracted_data", ex);
                put(g, o, "warnings",
                    stale ? warnings(g, "DOCUMENT_OUTDATED", "warning",
                                     "Outdated document",
                                     "The shareholder register is older than "
                                     "twelve months.")
                          : warnings(g, NULL, NULL, NULL, NULL));
                push(g, a, o);
        }
        return a;
}

static json_object *kyb_aml(gen_t *g, const company_t *co, int kwhy)
{
        json_object *o = new_obj(g), *hits = new_arr(g);
        int st = KYC_ST_APPROVED, n = 0, top = 0;

        if (kwhy == KWHY_COMPANY_SANCTIONS) {
                st = KYC_ST_DECLINED;
                top = rnd(g, 9000, 10000);
                push(g, hits,
                     aml_hit(g, co->name, "Sanctions",
                             "Sandbox Consolidated Sanctions List (fictional)",
                             top, co->c->alpha3, NULL));
                n = 1;
        } else if (kwhy == KWHY_ADVERSE_MEDIA) {
                st = KYC_ST_REVIEW;
                top = rnd(g, 5500, 7500);
                push(g, hits,
                     aml_hit(g, co->name, "Adverse Media",
                             "Sandbox News Archive (fictional)", top,
                             co->c->alpha3, NULL));
                n = 1;
        }
        put_uuid(g, o, "id");
        put_str(g, o, "status", kyb_st[st]);
        put_str(g, o, "entity_type", "company");
        put_str(g, o, "screened_name", co->name);
        put_str(g, o, "screened_jurisdiction", co->c->alpha3);
        put_int(g, o, "total_hits", n);
        put_num(g, o, "score", top);
        put(g, o, "datasets_searched", datasets_array(g, NULL));
        put(g, o, "hits", hits);
        put(g, o, "warnings",
            st == KYC_ST_DECLINED
                ? warnings(g, "POSSIBLE_MATCH_FOUND", "error",
                           "Sanctions match",
                           "The company matches a sanctions list entry.")
            : st == KYC_ST_REVIEW
                ? warnings(g, "ADVERSE_MEDIA_FOUND", "warning", "Adverse media",
                           "News coverage mentions the company; review "
                           "the article.")
                : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static void answer(gen_t *g, json_object *arr, const char *qid,
                   const char *question, json_object *value)
{
        json_object *o = new_obj(g);

        put_str(g, o, "question_id", qid);
        put_str(g, o, "question", question);
        put(g, o, "answer", value);
        push(g, arr, o);
}

static json_object *kyb_questionnaire(gen_t *g, const company_t *co, int kwhy)
{
        static const char *const volumes[] = { "under 10,000",
                                               "10,000 - 50,000",
                                               "50,000 - 250,000",
                                               "250,000 - 1,000,000", NULL };
        static const char *const funds[] = { "Revenue from operations",
                                             "Shareholder capital", "Bank loan",
                                             "Venture capital investment",
                                             NULL };
        json_object *o = new_obj(g), *ans = new_arr(g), *countries;
        int risky = kwhy == KWHY_QUESTIONNAIRE;
        char vol[96];

        snprintf(vol, sizeof(vol), "%s %s", co->c->currency, pick(g, volumes));
        put_uuid(g, o, "id");
        put_str(g, o, "status",
                kyb_st[risky ? KYC_ST_REVIEW : KYC_ST_APPROVED]);
        put_uuid(g, o, "questionnaire_id");
        put_str(g, o, "title", "Business profile");
        answer(g, ans, "nature_of_business", "What does the business do?",
               json_object_new_string(industries[co->industry].description));
        answer(g, ans, "expected_monthly_volume",
               "Expected monthly transaction volume?",
               json_object_new_string(vol));
        answer(g, ans, "source_of_funds", "Main source of funds?",
               json_object_new_string(risky ? "Cash deposits from third parties"
                                            : pick(g, funds)));
        countries = new_arr(g);
        push(g, countries, json_object_new_string(co->c->alpha3));
        if (rnd(g, 0, 1))
                push(g, countries,
                     json_object_new_string(pick_culture(g)->alpha3));
        answer(g, ans, "countries_of_operation", "Countries of operation?",
               countries);
        answer(g, ans, "number_of_employees", "Number of employees?",
               json_object_new_int(rnd(g, 1, 400)));
        answer(g, ans, "website", "Company website?",
               json_object_new_string(co->website));
        answer(g, ans, "is_regulated", "Is the business regulated?",
               json_object_new_boolean(rnd(g, 0, 1)));
        put(g, o, "answers", ans);
        put_time(g, o, "submitted_at");
        put(g, o, "warnings",
            risky
                ? warnings(g, "HIGH_RISK_ANSWER", "warning", "High-risk answer",
                           "The declared source of funds needs enhanced "
                           "due diligence.")
                : warnings(g, NULL, NULL, NULL, NULL));
        return o;
}

static void kyb_fill(gen_t *g, json_object *session, int outcome)
{
        company_t co;
        int kwhy = KWHY_NONE;

        if (outcome == KYC_ST_DECLINED)
                kwhy = KWHY_DISSOLVED + rnd(g, 0, 2);
        else if (outcome == KYC_ST_REVIEW)
                kwhy = KWHY_PERSON_REVIEW + rnd(g, 0, 3);
        make_company(g, &co);
        put_one(g, session, "registry_checks", kyb_registry(g, &co, kwhy));
        put(g, session, "key_people_checks", kyb_people(g, &co, kwhy));
        put(g, session, "document_verifications", kyb_documents(g, &co, kwhy));
        put_one(g, session, "aml_screenings", kyb_aml(g, &co, kwhy));
        put_one(g, session, "questionnaires", kyb_questionnaire(g, &co, kwhy));
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                              */

int kb_sbx_status_outcome(int kind, const char *status)
{
        const char *const *names;
        int i;

        if (!status)
                return 0;
        if (kind == KB_SESSION_USER)
                names = kyc_st;
        else if (kind == KB_SESSION_BUSINESS)
                names = kyb_st;
        else
                return 0;
        for (i = 0; i < 3; i++)
                if (strcmp(status, names[i]) == 0)
                        return i == KYC_ST_APPROVED ? KB_SBX_OUTCOME_APPROVED
                               : i == KYC_ST_DECLINED
                                   ? KB_SBX_OUTCOME_DECLINED
                                   : KB_SBX_OUTCOME_IN_REVIEW;
        return 0;
}

int kb_sbx_synth_fill(json_object *session, int kind, const char *status,
                      kb_rng_t *rng)
{
        gen_t g;
        int outcome, st;

        if (!session || !rng || !json_object_is_type(session, json_type_object))
                return KB_ERR_INVALID_ARG;
        outcome = kb_sbx_status_outcome(kind, status);
        if (!outcome)
                return KB_ERR_INVALID_ARG;
        st = outcome == KB_SBX_OUTCOME_APPROVED   ? KYC_ST_APPROVED
             : outcome == KB_SBX_OUTCOME_DECLINED ? KYC_ST_DECLINED
                                                  : KYC_ST_REVIEW;
        g.rng = rng;
        g.oom = 0;
        if (kind == KB_SESSION_USER) {
                person_t p;
                make_person(&g, NULL, &p);
                kyc_fill(&g, session, &p, why_for(&g, st));
        } else {
                kyb_fill(&g, session, st);
        }
        return g.oom ? KB_ERR_NOMEM : KB_OK;
}
