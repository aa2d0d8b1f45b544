from django.urls import path

from email_channel import views

urlpatterns = [
    path("<int:mail_id>/", views.mail_original, name="mail_original"),
    path("<int:mail_id>/html/", views.mail_html, name="mail_html"),
    path("<int:mail_id>/part/<int:n>/", views.mail_part, name="mail_part"),
]
