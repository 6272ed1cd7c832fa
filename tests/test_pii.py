"""Masking personal data in survey comments (servicepulse.reports.pii): what is masked,
in Chinese and English text, and what must stay readable (amounts, dates, times, ticket
ids and other numbers that are not phone or identity numbers)."""

from __future__ import annotations

import pytest

from servicepulse.reports.pii import MASKS, mask_pii


@pytest.mark.parametrize(("text", "expected"), [
    # Mainland mobile numbers, grouped or not, with a country code or not.
    ("请回电 13812345678，谢谢", "请回电 [phone]，谢谢"),
    ("手机138 1234 5678", "手机[phone]"),
    ("手机：138-1234-5678。", "手机：[phone]。"),
    ("call me 13900000000", "call me [phone]"),
    ("+86 138 1234 5678 anytime", "[phone] anytime"),
    ("+8613812345678", "[phone]"),
    ("0086 13812345678", "[phone]"),
    ("我的手机138.1234.5678", "我的手机[phone]"),
    ("138 123 45678 找我", "[phone] 找我"),
    ("8613812345678", "[phone]"),
    ("邮箱 张三@qq.com 投诉", "邮箱 [email] 投诉"),
    ("(+86)13812345678", "[phone]"),
    ("19912345678和17712345678", "[phone]和[phone]"),
    # Landlines: 3- and 4-digit area codes, brackets (ASCII and full-width), extensions.
    ("电话010-65529988", "电话[phone]"),
    ("座机 0755-8888 9999 找王经理", "座机 [phone] 找王经理"),
    ("(010) 6552 9988", "[phone]"),
    ("（021）64221234", "[phone]"),
    ("0571-87654321转123，周一到周五", "[phone]，周一到周五"),
    ("010-65529988-8021", "[phone]"),
    ("tel 0755 88889999 ext. 12", "tel [phone]"),
    ("02164221234", "[phone]"),
    # North American and other international numbers.
    ("Call (212) 555-0147 after 5pm.", "Call [phone] after 5pm."),
    ("my number is 212-555-0147", "my number is [phone]"),
    ("reach me on 212.555.0147 x204", "reach me on [phone]"),
    ("+1 212 555 0147", "[phone]"),
    ("1-800-555-0199 is the line", "[phone] is the line"),
    ("London: +44 20 7946 0958.", "London: [phone]."),
    # A local number without area code, only next to a word for phone or calling.
    ("call me at 8888 9999", "call me at [phone]"),
    ("请拨打 8888-9999 联系", "请拨打 [phone] 联系"),
    ("回电话：88889999", "回电话：[phone]"),
    # E-mail addresses, a phone number made into one, a full-width @.
    ("email me at li.wei@example.com", "email me at [email]"),
    ("邮箱Zhang_San+svc@mail.example.com.cn，谢谢", "邮箱[email]，谢谢"),
    ("13812345678@163.com", "[email]"),
    ("li＠example.com", "[email]"),
    # PRC identity numbers: 18 digits (X last, either case), grouped, and the 15-digit kind.
    ("身份证号110101199003074518，请核实", "身份证号[id]，请核实"),
    ("ID 11010519491231002X", "ID [id]"),
    ("id: 44030419851015123x.", "id: [id]."),
    ("110101 19900307 4518", "[id]"),
    ("旧身份证 110101900307451", "旧身份证 [id]"),
    # Full-width digits are digits.
    ("电话１３８１２３４５６７８", "电话[phone]"),
])
def test_personal_data_is_masked(text, expected):
    assert mask_pii(text) == expected


@pytest.mark.parametrize("text", [
    "订单金额500元，已退款120.50元",
    "¥1,280.50 was charged twice",
    "2026-11-23 10:30 到 2026-11-23 18:45 之间上门",
    "2026年11月23日下午3点",
    "2026/11/23, 23.11.2026, 20261123",
    "ISO 2026-11-23T10:30:00+08:00",
    "工单T-000123和T-000124都没解决",
    "order 12345678 arrived",         # 8 digits, no word for phone before it
    "订单号码 20261123001",           # 11 digits that do not start like a mobile number
    "打分 4.5/5，等了 3 天",
    "ticket 2026112301 reopened 2 times",
    "版本 1.2.3，+12.5%，-3",
    "9138123456789",                  # a mobile number's digits inside a longer number
    "1381234567",                     # one digit short of a mobile number
    "000123456789",                   # no area code starts 00
    "call back on 2026-11-23",        # a date after a word for calling
    "hotel room 8888 9999",           # "tel" inside another word
    "excellent, 1234 5678 stars",     # "cell" inside another word
    "123456789012345678",             # 18 digits without a province code and birth date
    "110101199013074518",             # month 13: no birth date
    "Smithson and Johnson were helpful",
])
def test_ordinary_numbers_and_words_stay(text):
    assert mask_pii(text, ["John Smith"]) == text


def test_chinese_names_are_masked_wherever_they_stand():
    assert mask_pii("我是王伟，王伟的订单还没到。李娜也等了三天", ["王伟", "李娜"]) == \
        "我是[name]，[name]的订单还没到。[name]也等了三天"
    # The CRM writes it with a space, the customer without, and the other way round.
    assert mask_pii("王伟来电", ["王 伟"]) == "[name]来电"
    assert mask_pii("王 伟来电", ["王伟"]) == "[name]来电"
    # A longer name that contains a shorter one is masked as one.
    assert mask_pii("欧阳娜娜说", ["娜娜", "欧阳娜娜"]) == "[name]说"
    # The surname with a form of address names the customer as well.
    assert mask_pii("王先生很耐心，李经理也来了", ["王伟", "李娜"]) == "[name]很耐心，[name]也来了"
    assert mask_pii("王师傅", ["李娜"]) == "王师傅"   # another surname: not the customer


def test_latin_names_are_masked_as_whole_words_in_any_case():
    names = ["John Smith"]
    assert mask_pii("JOHN SMITH here; john smith again", names) == "[name] here; [name] again"
    # A surname alone identifies as well as the full name; each word is masked.
    assert mask_pii("Mr. Smith called, then John.", names) == "Mr. [name] called, then [name]."
    # Whole words only: other words that contain the name stay.
    assert mask_pii("Johnson's Smithy", names) == "Johnson's Smithy"
    # A Chinese character next to it is a word boundary (no space in Chinese text).
    assert mask_pii("我是John，谢谢Smith先生", names) == "我是[name]，谢谢[name]先生"
    # Accented names, and the CRM's "Surname, Given" order.
    assert mask_pii("José García llamó", ["García, José"]) == "[name] [name] llamó"


def test_names_that_are_missing_or_too_short_mask_nothing():
    assert mask_pii("A call from a customer", [None, "", " ", "A"]) == "A call from a customer"


def test_a_name_inside_an_e_mail_address_is_one_e_mail_address():
    assert mask_pii("john.smith@example.com, John Smith", ["John Smith"]) == "[email], [name]"


def test_a_comment_with_everything():
    comment = ("王伟：上门师傅态度很好，500元的安装费已付。有问题打13812345678或"
               "010-65529988转8，也可以发邮件到 wang.wei@example.cn。身份证110101199003074518"
               "已登记。Thanks — John Smith, (212) 555-0147")
    assert mask_pii(comment, ["王伟", "John Smith"]) == (
        "[name]：上门师傅态度很好，500元的安装费已付。有问题打[phone]或"
        "[phone]，也可以发邮件到 [email]。身份证[id]"
        "已登记。Thanks — [name], [phone]")


def test_masks_do_not_tell_the_length_of_what_they_hide():
    assert mask_pii("13812345678") == mask_pii("138 1234 5678") == MASKS["phone"]
    assert mask_pii("110101199003074518") == mask_pii("110101900307451") == MASKS["id"]


def test_empty_text_stays_empty():
    assert mask_pii("") == ""
    assert mask_pii("   ") == "   "
